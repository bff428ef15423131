"""Chronological train / validation / test segments with a purge of the label horizon between them.

A row at bar position i carries a label that is only known at bar i + H (`label_end`). It belongs to a segment
[lo, hi) when lo <= i and i + H < hi: its whole label lies inside the segment, so no training label overlaps
the validation or test span. After the purge, `embargo_bars` more bars are skipped at the start of the
validation and test segments, so slowly decaying features computed on training bars do not bleed into the next
segment's first rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEGMENTS = ("train", "validation", "test")


def chronological_split(
    timestamps: pd.Series, horizon: int, train_frac: float, validation_frac: float, embargo_bars: int
) -> dict:
    n = len(timestamps)
    cut_val = int(np.floor(n * train_frac))
    cut_test = int(np.floor(n * (train_frac + validation_frac)))
    bounds = {
        "train": (0, cut_val),
        "validation": (cut_val + embargo_bars, cut_test),
        "test": (cut_test + embargo_bars, n),
    }
    out = {"horizon": int(horizon), "purge": int(horizon), "embargo": int(embargo_bars), "bars": int(n)}
    for name, (lo, hi) in bounds.items():
        last_row = hi - 1 - horizon  # last row whose label ends inside the segment
        if last_row < lo:
            raise ValueError(
                f"{name} segment [{lo}, {hi}) holds no complete label of horizon {horizon} bars; "
                "the data span is too short for this window"
            )
        out[name] = {
            "lo": int(lo),
            "hi": int(hi),
            "first_row": int(lo),
            "last_row": int(last_row),
            "start": timestamps.iloc[lo].isoformat(),
            "end": timestamps.iloc[hi - 1].isoformat(),
        }
    return out


def segment_mask(split: dict, segment: str, positions: np.ndarray, label_end: np.ndarray) -> np.ndarray:
    """Rows whose bar and whole label lie inside `segment`."""
    seg = split[segment]
    return (positions >= seg["lo"]) & (label_end < seg["hi"])
