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


class TooShortError(ValueError):
    """The bars cannot hold three segments with a complete label each for this horizon."""


def _bounds(n: int, train_frac: float, validation_frac: float, embargo_bars: int) -> dict:
    cut_val = int(np.floor(n * train_frac))
    cut_test = int(np.floor(n * (train_frac + validation_frac)))
    return {
        "train": (0, cut_val),
        "validation": (cut_val + embargo_bars, cut_test),
        "test": (cut_test + embargo_bars, n),
    }


def _fits(n: int, horizon: int, train_frac: float, validation_frac: float, embargo_bars: int) -> bool:
    bounds = _bounds(n, train_frac, validation_frac, embargo_bars).values()
    return all(hi - 1 - horizon >= lo for lo, hi in bounds)


def required_bars(horizon: int, train_frac: float, validation_frac: float, embargo_bars: int) -> int:
    """The fewest bars n such that every count >= n splits (each segment holds a complete label). From
    n_up = ceil((horizon + 2 + embargo) / shortest fraction) on, every segment is at least horizon + 1 bars
    long whatever the floors do; below it, step down while the count still splits."""
    shortest = min(train_frac, validation_frac, 1 - train_frac - validation_frac)
    n = int(np.ceil((horizon + 2 + embargo_bars) / shortest))
    while n > 1 and _fits(n - 1, horizon, train_frac, validation_frac, embargo_bars):
        n -= 1
    return n


def chronological_split(
    timestamps: pd.Series, horizon: int, train_frac: float, validation_frac: float, embargo_bars: int
) -> dict:
    """Segments of `timestamps` (bar positions and UTC times); TooShortError when a segment would hold no
    complete label, naming the bar count and the count this horizon needs."""
    n = len(timestamps)
    bounds = _bounds(n, train_frac, validation_frac, embargo_bars)
    out = {"horizon": int(horizon), "purge": int(horizon), "embargo": int(embargo_bars), "bars": int(n)}
    for name, (lo, hi) in bounds.items():
        last_row = hi - 1 - horizon  # last row whose label ends inside the segment
        if last_row < lo:
            need = required_bars(horizon, train_frac, validation_frac, embargo_bars)
            raise TooShortError(
                f"too short for this window: {n} bars, at least {need} needed for a label horizon of "
                f"{horizon} bars, embargo {embargo_bars} and fractions {train_frac:g}/{validation_frac:g}/"
                f"{1 - train_frac - validation_frac:.3g} (the {name} segment [{lo}, {hi}) would hold no "
                "complete label)"
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
