"""The one cross-validation splitter: purged, embargoed walk-forward folds over labelled rows.

Rows are the labelled bars of one coin, given by their bar `positions` (strictly increasing ints; gaps
allowed) and `label_end` (the position of the last bar of each row's label horizon, `label_end >= position`,
as in results/targets/{SYMBOL}/w{w}.parquet). Returned indices index into these arrays, not bar positions.

Layout (`n` rows, `F` folds): the rows are cut into `F + 1` chronological blocks of `n // (F + 1)` rows, the
first block (plus the remainder) being training-only; fold `k` validates on block `k + 1`.

- expanding: fold k trains on every row before its validation block;
- rolling:   fold k trains on the `train_size` rows just before its validation block (default: the size of the
             first block), so every fold sees the same amount of history.

A validation fold's time span is `[position of its first row, max label_end of its rows]` in bars. Training
rows are then cut so that no training label span `[position, label_end]` comes within `embargo` bars of it:

- purge:   a training row whose label horizon reaches into the validation span is dropped;
- embargo: the `embargo` bars that follow a validation span are barred from training. In walk-forward nothing
           after the fold is ever trained on, so the embargo is also kept as a gap in front of the fold
           (`label_end + embargo < first validation position`), matching the purge + embargo between the
           train / validation / test segments of results/splits (docs/CONTRACTS.md).

`check_purged_folds` states that invariant independently; `purged_walk_forward` asserts it on its own output.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Fold = tuple[np.ndarray, np.ndarray]


def purged_walk_forward(
    positions,
    label_end,
    n_folds: int = 5,
    mode: Literal["expanding", "rolling"] = "expanding",
    embargo: int = 0,
    min_train: int = 1,
    train_size: int | None = None,
) -> list[Fold]:
    """Chronological folds `(train_idx, val_idx)` (int64 index arrays, ascending) over the labelled rows.

    `embargo` is in bars, `min_train` and `train_size` in rows. Raises ValueError when the rows cannot give
    `n_folds` non-empty validation folds each with at least `min_train` training rows after purging; the
    caller then asks for fewer folds or a smaller embargo rather than silently receiving fewer folds.
    """
    pos, end = _validate_rows(positions, label_end)
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds}")
    if mode not in ("expanding", "rolling"):
        raise ValueError(f"mode must be 'expanding' or 'rolling', got {mode!r}")
    if embargo < 0:
        raise ValueError(f"embargo must be >= 0 bars, got {embargo}")
    if min_train < 1:
        raise ValueError(f"min_train must be >= 1 row, got {min_train}")
    n = len(pos)
    val_size = n // (n_folds + 1)
    if val_size < 1:
        raise ValueError(f"{n} rows cannot make {n_folds} validation folds (need at least {n_folds + 1})")
    first_val = n - n_folds * val_size
    window = first_val if train_size is None else int(train_size)
    if window < 1:
        raise ValueError(f"train_size must be >= 1 row, got {train_size}")

    # Each row's own label_end decides (horizons vary with the target), not its place in the order: an early
    # row with a long horizon can be purged while a later, shorter one is kept.
    folds: list[Fold] = []
    for k in range(n_folds):
        v_lo = first_val + k * val_size
        val_idx = np.arange(v_lo, v_lo + val_size, dtype=np.int64)
        span_lo = int(pos[v_lo])
        lo = 0 if mode == "expanding" else max(0, v_lo - window)
        cand = np.arange(lo, v_lo, dtype=np.int64)
        keep = end[cand] + embargo < span_lo
        train_idx = cand[keep]
        if len(train_idx) < min_train:
            raise ValueError(
                f"fold {k}: {len(train_idx)} training rows after purge/embargo (< min_train={min_train}); "
                f"use fewer folds, a shorter embargo or more rows"
            )
        folds.append((train_idx, val_idx))
    check_purged_folds(pos, end, folds, embargo)
    return folds


def validation_span(positions, label_end, val_idx) -> tuple[int, int]:
    """[first bar, last label bar] of a validation fold, inclusive, in bar positions."""
    pos, end = np.asarray(positions), np.asarray(label_end)
    return int(pos[val_idx].min()), int(end[val_idx].max())


def check_purged_folds(positions, label_end, folds: list[Fold], embargo: int = 0) -> None:
    """Raise AssertionError unless every fold is leak-free.

    For each fold: train and validation are non-empty, disjoint and ascending; no training label span
    `[position, label_end]` overlaps the validation span `[lo, hi]` widened by `embargo` bars on both sides
    (the purge, the embargo after the fold, and the walk-forward gap before it); validation blocks follow each
    other in time.
    """
    pos, end = _validate_rows(positions, label_end)
    prev_val_lo = -1
    for k, (train_idx, val_idx) in enumerate(folds):
        train_idx, val_idx = np.asarray(train_idx), np.asarray(val_idx)
        assert len(val_idx) > 0, f"fold {k}: empty validation"
        assert len(train_idx) > 0, f"fold {k}: empty training"
        assert np.all(np.diff(train_idx) > 0) and np.all(np.diff(val_idx) > 0), f"fold {k}: not ascending"
        assert not np.intersect1d(train_idx, val_idx).size, f"fold {k}: train and validation share rows"
        lo, hi = validation_span(pos, end, val_idx)
        t_lo, t_hi = pos[train_idx], end[train_idx]
        overlap = (t_lo <= hi + embargo) & (t_hi + embargo >= lo)
        assert not overlap.any(), (
            f"fold {k}: {int(overlap.sum())} training label spans within {embargo} bars of validation "
            f"[{lo}, {hi}]"
        )
        assert val_idx[0] > prev_val_lo, f"fold {k}: validation folds not chronological"
        prev_val_lo = int(val_idx[0])


def _validate_rows(positions, label_end) -> tuple[np.ndarray, np.ndarray]:
    pos = np.asarray(positions, dtype=np.int64)
    end = np.asarray(label_end, dtype=np.int64)
    if pos.ndim != 1 or pos.shape != end.shape:
        raise ValueError("positions and label_end must be 1-D arrays of equal length")
    if len(pos) > 1 and not np.all(np.diff(pos) > 0):
        raise ValueError("positions must be strictly increasing")
    if np.any(end < pos):
        raise ValueError("label_end must be >= position for every row")
    return pos, end
