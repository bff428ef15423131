"""Feature screening (pipeline step 1, "data preparation"): cheap filters fitted on the training segment only.

`screen_features(X_train, spec)` receives the training rows and nothing else, so no statistic can see
validation or test bars; `training_rows(frame, split)` is the one way to cut those rows from a feature table
with the split JSON of docs/CONTRACTS.md. Filters run in a fixed order and every dropped feature gets the
first reason that applies (the statistics of all filters are still reported for every feature):

1. ``target_derived``   the name looks like a label (a target id in it, or it starts with target/label, also
                        after a coin prefix).
2. ``missing``          structurally missing share > ``max_missing_frac``: rows where the feature's *source*
                        had no data at all (for ``{OTHER}__family__name`` the other coin had no bar at that
                        timestamp: not listed yet, delisted, exchange gap).
3. ``nan``              NaN share > ``max_nan_frac``: rows where the value is not a finite number (NaN or
                        +-inf), whatever the cause (source absent, warm-up, a window spanning a gap, 0/0,
                        x/0).
4. ``same_value``       the most frequent finite value covers > ``max_same_value_frac`` of the finite values.
5. ``low_variance``     variance of the finite values <= ``min_variance`` (absolute, so it catches constants
                        and float noise; quasi-constant features are the job of rule 4).
6. ``correlated``       |Pearson r| > ``max_abs_corr`` with a feature that is kept; of a correlated pair the
                        one with fewer NaN rows stays, then fewer structurally missing rows, then the coin's
                        own feature over another coin's, then the smaller name.

Missing vs NaN: "missing" counts only rows where the source coin has no bar, so it is a statement about the
data supply; "NaN" counts every unusable value. Every missing row is also a NaN row, never the other way
round, which is why the two rules are not redundant: 75% missing is dropped by rule 2 (the feature describes a
quarter of the history), 50% missing + 45% warm-up NaN is dropped by rule 3, 85% NaN from a sparse indicator
survives both (LightGBM gives NaN its own branch). Availability is inferred per source: a row is missing for a
source when every column of that source is NaN there (own features have no prefix and are always available in
their own table, except for such all-NaN rows); pass ``availability`` to state it explicitly.

Correlation: columns are standardised once (mean and std over their finite training values, float64), NaN/inf
set to 0 *after* centering, scaled to unit norm and stored as float32. A dot product is then the exact Pearson
r when both columns are complete, and a pairwise-complete approximation otherwise (covariance over jointly
finite rows divided by each column's own std): it shrinks towards 0, so it can only keep a pair that the exact
pairwise-complete r would drop, never the reverse. The greedy keep/drop runs in priority order over blocks of
``corr_block_size`` columns: each block is multiplied against the already kept columns (one float32 GEMM) and
then against itself, so memory is one n x p float32 copy plus a block x kept result, never a p x p matrix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from workflow_scripts.data.splits import segment_mask

SPEC_KEYS = (  # config/screening/*.yaml holds the values
    "max_missing_frac",
    "max_nan_frac",
    "min_variance",
    "max_same_value_frac",
    "max_abs_corr",
    "corr_block_size",
)

REPORT_COLUMNS = [
    "feature",
    "kept",
    "reason",
    "missing_frac",
    "nan_frac",
    "variance",
    "top_value_frac",
    "correlated_with",
    "abs_corr",
]

# Reasons in the order the filters are applied; "" for a kept feature.
REASONS = ("target_derived", "missing", "nan", "same_value", "low_variance", "correlated")

_TARGET_ID = re.compile(r"(high|low)_(breakout|reversion)_k\d", re.IGNORECASE)
_SOURCE_PREFIX = re.compile(r"^[A-Z0-9]{2,20}$")
OWN_SOURCE = ""


# ---- names -------------------------------------------------------------------------------------------------
def is_target_column(name: str) -> bool:
    """True for a name that could carry a label: a target id anywhere, or a name starting with target/label.

    The start is checked after a coin prefix too, so a cross-coin copy (`ETHUSDT__target_x`, another coin's
    label: also the future) is caught as well as the plain `label_end`.
    """
    if _TARGET_ID.search(name):
        return True
    parts = name.split("__", 1)
    bare = parts[1] if len(parts) == 2 and _SOURCE_PREFIX.match(parts[0]) else name
    return name.lower().startswith(("target", "label")) or bare.lower().startswith(("target", "label"))


def feature_source(name: str) -> str:
    """`ETHUSDT__tech__rsi_14` -> 'ETHUSDT'; own features (`tech__rsi_14`) -> '' (OWN_SOURCE)."""
    parts = name.split("__")
    if len(parts) >= 3 and _SOURCE_PREFIX.match(parts[0]):
        return parts[0]
    return OWN_SOURCE


# ---- rows --------------------------------------------------------------------------------------------------
def segment_positions(split: Mapping[str, Any], segment: str, n_rows: int) -> np.ndarray:
    """Bar positions of one segment of the split JSON: lo <= i and i + H < hi (`splits.segment_mask`)."""
    pos = np.arange(n_rows, dtype=np.int64)
    return pos[segment_mask(dict(split), segment, pos, pos + int(split["horizon"]))]


def training_rows(frame: pd.DataFrame, split: Mapping[str, Any]) -> pd.DataFrame:
    """The training segment of a feature table (one row per ingested bar, position = row number)."""
    return frame.iloc[segment_positions(split, "train", len(frame))]


# ---- statistics --------------------------------------------------------------------------------------------
def _infer_availability(values: np.ndarray, columns: list[str]) -> dict[str, np.ndarray]:
    """Per source, a bool row mask: True where at least one of the source's columns is not NaN."""
    by_source: dict[str, list[int]] = {}
    for j, name in enumerate(columns):
        by_source.setdefault(feature_source(name), []).append(j)
    available = {}
    for source, idx in by_source.items():
        mask = np.zeros(values.shape[0], dtype=bool)
        for start in range(0, len(idx), 1024):
            mask |= ~np.isnan(values[:, idx[start : start + 1024]]).all(axis=1)
        available[source] = mask
    return available


def _top_value_frac(block: np.ndarray) -> np.ndarray:
    """Share of the finite values taken by the most frequent one, per column of `block` (rows x cols)."""
    cols = np.array(block.T, dtype=np.float32, order="C")  # values are float32: equality is exact
    cols[~np.isfinite(cols)] = np.nan
    cols.sort(axis=1)  # NaN sorts last; each NaN is a run of 1, which never beats a finite run
    n_cols, n = cols.shape
    n_finite = n - np.isnan(cols).sum(axis=1)
    if n == 0:
        return np.full(n_cols, np.nan)
    is_start = np.ones(cols.shape, dtype=bool)
    is_start[:, 1:] = cols[:, 1:] != cols[:, :-1]
    starts = np.flatnonzero(is_start.ravel())  # every row's first element is a start: runs never cross rows
    run_len = np.empty_like(starts)
    run_len[:-1] = starts[1:] - starts[:-1]
    run_len[-1] = cols.size - starts[-1]
    first_run = np.searchsorted(starts, np.arange(n_cols) * n)
    top = np.maximum.reduceat(run_len, first_run)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_finite > 0, top / np.maximum(n_finite, 1), np.nan)


def column_statistics(
    values: np.ndarray,
    columns: list[str],
    availability: Mapping[str, np.ndarray] | None = None,
    block_size: int = 1024,
) -> pd.DataFrame:
    """missing_frac, nan_frac, variance, top_value_frac per column of `values` (training rows x features)."""
    n_rows, n_cols = values.shape
    if availability is None:
        availability = _infer_availability(values, columns)
    missing = np.empty(n_cols)
    nan = np.empty(n_cols)
    var = np.empty(n_cols)
    top = np.empty(n_cols)
    sources = [feature_source(c) for c in columns]
    for start in range(0, n_cols, block_size):
        stop = min(start + block_size, n_cols)
        raw = values[:, start:stop]
        finite = np.isfinite(raw)
        n_fin = finite.sum(axis=0)
        nan[start:stop] = 1.0 - n_fin / max(n_rows, 1)
        block = raw.astype(np.float64)
        block[~finite] = 0.0
        block -= block.sum(axis=0) / np.maximum(n_fin, 1)
        block[~finite] = 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            sq = np.einsum("ij,ij->j", block, block)
            var[start:stop] = np.where(n_fin > 1, sq / np.maximum(n_fin - 1, 1), np.nan)
        del block
        top[start:stop] = _top_value_frac(raw)
    source_missing = {s: 1.0 - float(np.mean(m)) if n_rows else 0.0 for s, m in availability.items()}
    missing[:] = [source_missing.get(s, 0.0) for s in sources]
    return pd.DataFrame(
        {"feature": columns, "missing_frac": missing, "nan_frac": nan, "variance": var, "top_value_frac": top}
    )


def standardised_columns(values: np.ndarray, col_idx: np.ndarray, block_size: int = 1024) -> np.ndarray:
    """float32 (len(col_idx) x rows): centred on finite mean, NaN/inf -> 0 after centring, unit L2 norm."""
    out = np.empty((len(col_idx), values.shape[0]), dtype=np.float32)
    for start in range(0, len(col_idx), block_size):
        idx = col_idx[start : start + block_size]
        raw = values[:, idx]
        finite = np.isfinite(raw)
        block = raw.astype(np.float64)
        block[~finite] = 0.0
        block -= block.sum(axis=0) / np.maximum(finite.sum(axis=0), 1)
        block[~finite] = 0.0  # NaN -> 0 after centring: contributes nothing to any dot product
        norm = np.sqrt(np.einsum("ij,ij->j", block, block))
        norm[norm == 0] = 1.0  # constant columns never reach here; guard anyway
        block /= norm
        out[start : start + len(idx)] = block.T
    return out


def blocked_correlation(values: np.ndarray, block_size: int = 1024) -> np.ndarray:
    """Full |r| matrix by the same float32 standardisation, for tests and small frames only (p x p)."""
    z = standardised_columns(values, np.arange(values.shape[1]), block_size)
    out = np.empty((z.shape[0], z.shape[0]), dtype=np.float32)
    for start in range(0, z.shape[0], block_size):
        out[start : start + block_size] = z[start : start + block_size] @ z.T
    return out


def greedy_correlation_filter(
    z: np.ndarray, max_abs_corr: float, block_size: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep columns of `z` (rows = standardised columns, in priority order) not correlated with an earlier
    kept one.

    Returns (kept bool, partner index or -1, |r| with the partner). `z` is compacted in place (kept rows move
    to the front), so the caller must not reuse it.
    """
    p = z.shape[0]
    kept = np.zeros(p, dtype=bool)
    partner = np.full(p, -1, dtype=np.int64)
    partner_r = np.full(p, np.nan)
    kept_ids = np.empty(p, dtype=np.int64)  # original index of z row k for k < n_kept
    n_kept = 0
    for start in range(0, p, block_size):
        stop = min(start + block_size, p)
        block = z[start:stop].copy()
        alive = np.ones(stop - start, dtype=bool)
        if n_kept:
            r = np.abs(block @ z[:n_kept].T)  # (block, kept)
            best = r.argmax(axis=1)
            best_r = r[np.arange(len(best)), best]
            hit = best_r > max_abs_corr
            alive &= ~hit
            partner[start:stop][hit] = kept_ids[best[hit]]
            partner_r[start:stop][hit] = best_r[hit]
        inner = np.abs(block @ block.T)
        for i in range(stop - start):
            if not alive[i]:
                continue
            earlier = np.flatnonzero(alive[:i])
            if earlier.size:
                j = earlier[inner[i, earlier].argmax()]
                if inner[i, j] > max_abs_corr:
                    alive[i] = False
                    partner[start + i] = start + j
                    partner_r[start + i] = inner[i, j]
        survivors = np.flatnonzero(alive)
        kept[start + survivors] = True
        z[n_kept : n_kept + survivors.size] = block[
            survivors
        ]  # rows < start are never read again as candidates
        kept_ids[n_kept : n_kept + survivors.size] = start + survivors
        n_kept += survivors.size
    return kept, partner, partner_r


# ---- the screen --------------------------------------------------------------------------------------------
def screen_features(
    X_train: pd.DataFrame,
    spec: Mapping[str, Any],
    availability: Mapping[str, np.ndarray] | None = None,
) -> tuple[list[str], pd.DataFrame]:
    """Screen the feature columns of the training rows; returns (kept names in input order, report).

    `X_train` holds training-segment rows and numeric feature columns only (no timestamp). The report has one
    row per input column, in input order: feature, kept, reason ('' if kept), missing_frac, nan_frac,
    variance, top_value_frac (shares of training rows / finite values), correlated_with and abs_corr (the kept
    feature that caused a `correlated` drop). `availability` optionally maps source ('' = own, 'ETHUSDT', ...)
    to a bool mask over the rows; without it availability is inferred (module docstring).
    """
    spec = {k: v for k, v in spec.items() if k != "name"}  # Hydra group label
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise KeyError(f"unknown screening key(s) {unknown}; allowed: {sorted(SPEC_KEYS)}")
    missing = [key for key in SPEC_KEYS if key not in spec]
    if missing:
        raise KeyError(f"screening key(s) {missing} missing; required: {list(SPEC_KEYS)}")
    columns = [str(c) for c in X_train.columns]
    if len(set(columns)) != len(columns):
        raise ValueError("duplicate feature column names")
    bad = [c for c, dt in zip(columns, X_train.dtypes) if not (pd.api.types.is_numeric_dtype(dt))]
    if bad:
        raise TypeError(f"non-numeric columns given to screen_features (pass features only): {bad[:5]}")
    block = int(spec["corr_block_size"])
    values = X_train.to_numpy(dtype=np.float32, copy=False)

    report = column_statistics(values, columns, availability, block)
    reason = np.array([""] * len(columns), dtype=object)

    def drop(mask: np.ndarray, why: str) -> None:
        reason[(reason == "") & mask] = why

    drop(np.array([is_target_column(c) for c in columns], dtype=bool), "target_derived")
    drop(report["missing_frac"].to_numpy() > spec["max_missing_frac"], "missing")
    drop(report["nan_frac"].to_numpy() > spec["max_nan_frac"], "nan")
    # A column without finite values has top_value_frac NaN; it was dropped above unless max_nan_frac >= 1.
    drop(~(report["top_value_frac"].to_numpy() <= spec["max_same_value_frac"]), "same_value")
    drop(~(report["variance"].to_numpy() > spec["min_variance"]), "low_variance")

    correlated_with = np.array([""] * len(columns), dtype=object)
    abs_corr = np.full(len(columns), np.nan)
    candidates = np.flatnonzero(reason == "")
    if candidates.size > 1:
        # Priority: fewer NaN rows, fewer missing rows, own before cross-coin, name. Counts (not shares) keep
        # ties exact.
        n = max(len(X_train), 1)
        nan_count = np.rint(report["nan_frac"].to_numpy()[candidates] * n)
        missing_count = np.rint(report["missing_frac"].to_numpy()[candidates] * n)
        names = np.array(columns, dtype=object)[candidates]
        own_last = np.array([feature_source(c) != OWN_SOURCE for c in names])  # own copy beats another coin's
        order = sorted(
            range(candidates.size), key=lambda i: (nan_count[i], missing_count[i], own_last[i], names[i])
        )
        ordered = candidates[np.array(order, dtype=np.int64)]
        z = standardised_columns(values, ordered, block)
        kept_mask, partner, partner_r = greedy_correlation_filter(z, float(spec["max_abs_corr"]), block)
        del z
        for k in np.flatnonzero(~kept_mask):
            col = ordered[k]
            reason[col] = "correlated"
            correlated_with[col] = columns[ordered[partner[k]]]
            abs_corr[col] = partner_r[k]

    report.insert(1, "kept", reason == "")
    report.insert(2, "reason", reason.astype(str))
    report["correlated_with"] = correlated_with.astype(str)
    report["abs_corr"] = abs_corr
    report = report[REPORT_COLUMNS]
    kept = [c for c, r in zip(columns, reason) if r == ""]
    return kept, report


# ---- outputs a person (and the next rule) reads ------------------------------------------------------------
def screening_summary(report: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON the selection rule reads: kept list, counts per reason, the spec used."""
    counts = report["reason"].replace("", "kept").value_counts()
    return {
        "spec": {key: spec[key] for key in SPEC_KEYS},
        "n_input": len(report),
        "n_kept": int(report["kept"].sum()),
        "dropped_by_reason": {r: int(counts.get(r, 0)) for r in REASONS},
        "kept": report.loc[report["kept"], "feature"].tolist(),
        "dropped": {
            row.feature: {"reason": row.reason, "correlated_with": row.correlated_with or None}
            for row in report.loc[~report["kept"]].itertuples()
        },
    }


def screening_markdown(
    report: pd.DataFrame, summary: Mapping[str, Any], title: str = "Feature screening"
) -> str:
    """A short human-readable report: counts per reason, then every dropped feature with its statistics."""
    lines = [f"# {title}", "", f"{summary['n_kept']} of {summary['n_input']} features kept.", ""]
    lines += ["| reason | features dropped |", "|---|---:|"]
    lines += [f"| {r} | {n} |" for r, n in summary["dropped_by_reason"].items()]
    lines += ["", "## Dropped features", ""]
    lines += [
        "| feature | reason | missing | NaN | variance | top value | correlated with (abs r) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in report.loc[~report["kept"]].itertuples():
        corr = f"{row.correlated_with} ({row.abs_corr:.3f})" if row.correlated_with else ""
        lines.append(
            f"| {row.feature} | {row.reason} | {row.missing_frac:.3f} | {row.nan_frac:.3f} | "
            f"{row.variance:.3g} | {row.top_value_frac:.3f} | {corr} |"
        )
    return "\n".join(lines) + "\n"
