"""Feature selection (pipeline step 2): shallow LightGBM per variant, top features by gain, aggregated.

Per (symbol, window) every target variant trains on its own rows: the most recent `subsample_rows` training
event rows (target code 0, 1 or 2, training segment only). The last `val_frac` of those rows is the
early-stopping slice, and fit rows whose label horizon reaches into it are purged. The validation and test
segments are never read, so selection cannot leak into the stage-1 ranking, which uses the validation segment.

The variants of one (symbol, window) share rows and columns, so LightGBM's binned dataset is built once over
the union of their rows (`build_shared_dataset`) and each variant takes `subset(idx)`. Order matters: a
subset's label set before the subset is constructed is silently dropped (training then uses the parent's
labels while `get_label()` shows the new ones), so `_labelled_subset` constructs first, sets the label second,
and reads the label back from LightGBM to prove it took.

The shared dataset is built with `free_raw_data=True`: a subset of a dataset that keeps its raw data copies
the raw rows on construction (`get_data()`), a cost per variant that buys nothing here (training reads the
bins only). Because the raw data are gone, bin-related parameters must be identical for the parent and every
variant (`dataset_params`); per-variant seeds go to the bagging/feature-fraction seeds, which are not bin
parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # annotations only: lightgbm is imported by the functions that train
    import lightgbm as lgb

from workflow_scripts.artifacts import atomic_path
from workflow_scripts.selection.feature_screening import is_target_column

# Seeds a variant may change without touching the bins of the shared dataset.
_VARIANT_SEED_KEYS = ("bagging_seed", "feature_fraction_seed", "extra_seed", "drop_seed")
TRAINING_CODES = (0, 1, 2)


# ---- inputs ------------------------------------------------------------------------------------------------
def feature_inputs(columns: Sequence[str]) -> list[str]:
    """The columns that may enter a model: not the timestamp, nothing that looks like a label."""
    return [c for c in columns if c != "timestamp" and not is_target_column(c)]


def load_columns(path: str | Path, columns: Sequence[str]) -> pd.DataFrame:
    """Read only `columns` from a parquet file (the feature tables are ~15,000 columns wide)."""
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=list(columns)).to_pandas()


@dataclass(frozen=True)
class VariantRows:
    """Bar positions (row numbers of the feature table) and labels of one variant's fit and early-stopping
    rows."""

    fit_pos: np.ndarray
    y_fit: np.ndarray
    val_pos: np.ndarray
    y_val: np.ndarray


def chronological_subsample(
    positions: np.ndarray, n_rows: int, val_frac: float, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Most recent `n_rows` of sorted `positions`; the last `val_frac` of them is the early-stopping slice.

    Fit rows whose label ends at or after the first early-stopping bar (pos + horizon >= that bar) are purged.
    """
    positions = np.sort(np.asarray(positions, dtype=np.int64))
    positions = positions[max(len(positions) - int(n_rows), 0) :] if n_rows > 0 else positions[:0]
    n_val = round(len(positions) * float(val_frac))
    if n_val == 0 or n_val >= len(positions):
        return positions, positions[:0]
    val = positions[-n_val:]
    fit = positions[:-n_val]
    fit = fit[fit + int(horizon) < val[0]]
    return fit, val


def plan_window(
    targets: pd.DataFrame,
    train_positions: np.ndarray,
    target_ids: Sequence[str],
    spec: Mapping[str, Any],
    horizon: int,
) -> tuple[np.ndarray, dict[str, VariantRows]]:
    """Rows of every variant of one (symbol, window) and the sorted union of their positions.

    `targets` is results/targets/{SYMBOL}/w{w}.parquet (row = bar position); `train_positions` the training
    segment's positions (`segment_positions(split, "train", n)`); event rows are codes 0, 1, 2.
    """
    train_positions = np.asarray(train_positions, dtype=np.int64)
    variants: dict[str, VariantRows] = {}
    for tid in target_ids:
        codes = targets[tid].to_numpy()[train_positions]
        event = train_positions[np.isin(codes, TRAINING_CODES)]
        fit, val = chronological_subsample(event, spec["subsample_rows"], spec["val_frac"], horizon)
        col = targets[tid].to_numpy()
        variants[tid] = VariantRows(fit, col[fit].astype(np.int32), val, col[val].astype(np.int32))
    used = [v.fit_pos for v in variants.values()] + [v.val_pos for v in variants.values()]
    union = np.unique(np.concatenate(used)) if used else np.empty(0, dtype=np.int64)
    return union, variants


# ---- the shared binned dataset -----------------------------------------------------------------------------
def dataset_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters the shared dataset is built with: the full selection params minus the per-variant seeds."""
    return {k: v for k, v in params.items() if k not in _VARIANT_SEED_KEYS}


def build_shared_dataset(
    X: np.ndarray | pd.DataFrame, feature_names: Sequence[str], params: Mapping[str, Any]
) -> lgb.Dataset:
    """Bin `X` (union rows x features) once; variants take `subset(idx)` of it (idx = row numbers of `X`).

    `params` are the full LightGBM parameters (the config's selection.params); every variant
    must train with the same bin-related values.

    The label is a placeholder (LightGBM wants one to construct subsets); every variant sets its own.
    """
    import lightgbm as lgb  # here, not at the top: it pulls in scikit-learn, ~1.3 s of every job's start

    values = X.to_numpy(dtype=np.float32) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=np.float32)
    names = list(feature_names)
    if values.shape[1] != len(names):
        raise ValueError(f"{values.shape[1]} columns but {len(names)} feature names")
    leaks = [n for n in names if is_target_column(n)]
    if leaks:
        raise ValueError(f"target-derived columns among the inputs: {leaks[:5]}")
    return lgb.Dataset(
        values,
        label=np.zeros(values.shape[0], dtype=np.float32),
        feature_name=names,
        params=dataset_params(params),
        free_raw_data=True,
    ).construct()


def _labelled_subset(shared: lgb.Dataset, idx: np.ndarray, y: np.ndarray) -> lgb.Dataset:
    """subset(idx) with labels y: construct first, then set the label, then check LightGBM holds it."""
    idx = np.asarray(idx, dtype=np.int64)
    y = np.asarray(y, dtype=np.float32)
    if idx.shape != y.shape:
        raise ValueError(f"{idx.shape[0]} rows but {y.shape[0]} labels")
    order = np.argsort(idx, kind="stable")  # LightGBM sorts subset indices; keep labels aligned
    idx, y = idx[order], y[order]
    if idx.size and (np.any(np.diff(idx) == 0) or idx[0] < 0 or idx[-1] >= shared.num_data()):
        raise ValueError("subset indices must be unique row numbers of the shared dataset")
    sub = shared.subset(idx.tolist()).construct()
    sub.set_label(y)
    if not np.array_equal(np.asarray(sub.get_field("label")), y):
        raise RuntimeError("LightGBM did not take the variant's labels")
    return sub


def variant_params(params: Mapping[str, Any], seed: int) -> dict[str, Any]:
    out = dataset_params(params)
    out.update({k: int(seed) for k in _VARIANT_SEED_KEYS})
    return out


def select_for_variant(
    shared: lgb.Dataset,
    row_idx: np.ndarray,
    y: np.ndarray,
    val_idx: np.ndarray | None,
    y_val: np.ndarray | None,
    params: Mapping[str, Any],
    top_k: int = 200,
    seed: int = 42,
    num_boost_round: int = 100,
    early_stopping_rounds: int = 20,
) -> pd.DataFrame:
    """Train a shallow model on shared rows `row_idx` (labels `y` in 0..2), return the top `top_k` features.

    Early stopping on `val_idx` (rows of the shared dataset) when given. Returns columns feature, gain,
    norm_gain (gain / total gain of the model), sorted by gain then name; features with zero gain never
    appear. `attrs` holds best_iteration, n_fit, n_val.
    """
    import lightgbm as lgb  # here, not at the top: it pulls in scikit-learn, ~1.3 s of every job's start

    train = _labelled_subset(shared, row_idx, y)
    run_params = variant_params(params, seed)
    valid_sets, callbacks = [], []
    if val_idx is not None and len(val_idx):
        valid_sets = [_labelled_subset(shared, val_idx, y_val)]
        callbacks = [lgb.early_stopping(int(early_stopping_rounds), verbose=False)]
    booster = lgb.train(
        run_params, train, num_boost_round=int(num_boost_round), valid_sets=valid_sets, callbacks=callbacks
    )
    best = booster.best_iteration if booster.best_iteration > 0 else None
    table = importance_table(booster, top_k, iteration=best)
    table.attrs.update(
        {
            "best_iteration": int(best or booster.current_iteration()),
            "n_fit": len(row_idx),
            "n_val": int(0 if val_idx is None else len(val_idx)),
        }
    )
    return table


def importance_table(booster: lgb.Booster, top_k: int, iteration: int | None = None) -> pd.DataFrame:
    gain = booster.feature_importance(importance_type="gain", iteration=iteration).astype(np.float64)
    total = gain.sum()
    table = pd.DataFrame(
        {
            "feature": booster.feature_name(),
            "gain": gain,
            "norm_gain": gain / total if total > 0 else 0.0 * gain,
        }
    )
    table = table[table["gain"] > 0].sort_values(
        ["gain", "feature"], ascending=[False, True], kind="mergesort"
    )
    return table.head(int(top_k)).reset_index(drop=True)


def select_window(
    X_union: np.ndarray | pd.DataFrame,
    feature_names: Sequence[str],
    union_positions: np.ndarray,
    variants: Mapping[str, VariantRows],
    spec: Mapping[str, Any],
) -> dict[str, pd.DataFrame]:
    """All variants of one (symbol, window) on one shared dataset; X_union rows = `union_positions` in
    order."""
    params = dict(spec["params"])
    shared = build_shared_dataset(X_union, feature_names, params)
    union_positions = np.asarray(union_positions, dtype=np.int64)
    out = {}
    for tid, rows in variants.items():
        if len(rows.fit_pos) == 0 or len(np.unique(rows.y_fit)) < 2:
            out[tid] = pd.DataFrame({"feature": [], "gain": [], "norm_gain": []})
            continue
        out[tid] = select_for_variant(
            shared,
            np.searchsorted(union_positions, rows.fit_pos),
            rows.y_fit,
            np.searchsorted(union_positions, rows.val_pos),
            rows.y_val,
            params,
            top_k=spec["top_k"],
            seed=spec["seed"],
            num_boost_round=spec["num_boost_round"],
            early_stopping_rounds=spec["early_stopping_rounds"],
        )
    return out


# ---- aggregation and reports -------------------------------------------------------------------------------
def aggregate_selection(
    per_variant: Sequence[pd.DataFrame],
    keep_min: int = 300,
    keep_max: int = 500,
    score_coverage: float = 0.95,
) -> pd.DataFrame:
    """Combine variants' top lists into one ranking and mark the kept features.

    frequency = share of variants whose top list holds the feature; mean_norm_gain = its mean norm_gain over
    those variants; score = frequency * mean_norm_gain (= mean norm_gain over all variants, absent = 0).
    Ranked by score, then frequency, then name. `selected`: the smallest head of the ranking whose score
    reaches `score_coverage` of the total, clipped to [keep_min, keep_max] (fewer when fewer features ever had
    gain).
    """
    n_variants = len(per_variant)
    cols = ["feature", "frequency", "mean_norm_gain", "score", "rank", "selected"]
    frames = [t[["feature", "norm_gain"]] for t in per_variant if len(t)]
    if not frames:
        return pd.DataFrame({c: [] for c in cols})
    stacked = pd.concat(frames, ignore_index=True)
    grouped = stacked.groupby("feature", sort=True)["norm_gain"]
    table = pd.DataFrame({"count": grouped.size(), "sum": grouped.sum()}).reset_index()
    table["frequency"] = table["count"] / n_variants
    table["mean_norm_gain"] = table["sum"] / table["count"]
    table["score"] = table["sum"] / n_variants
    table = table.sort_values(
        ["score", "frequency", "feature"], ascending=[False, False, True], kind="mergesort"
    )
    table = table.reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    cumulative = table["score"].cumsum() / table["score"].sum()
    n_cover = int(np.searchsorted(cumulative.to_numpy(), score_coverage - 1e-12) + 1)
    n_keep = min(max(n_cover, int(keep_min)), int(keep_max), len(table))
    table["selected"] = table["rank"] <= n_keep
    return table[cols]


def selection_summary(table: pd.DataFrame, spec: Mapping[str, Any], n_variants: int) -> dict[str, Any]:
    """The JSON stage 1 reads: selected features in rank order with their scores."""
    sel = table[table["selected"]]
    return {
        "spec": {k: v for k, v in spec.items() if k != "name"},  # without Hydra's group label
        "n_variants": int(n_variants),
        "n_candidates": len(table),
        "n_selected": len(sel),
        "features": sel["feature"].tolist(),
        "scores": {
            r.feature: {
                "rank": int(r.rank),
                "frequency": float(r.frequency),
                "mean_norm_gain": float(r.mean_norm_gain),
                "score": float(r.score),
            }
            for r in sel.itertuples()
        },
    }


def selection_markdown(
    table: pd.DataFrame, title: str = "Feature selection", top_n: int | None = None
) -> str:
    sel = table[table["selected"]]
    if top_n is not None:
        sel = sel.head(top_n)
    lines = [
        f"# {title}",
        "",
        f"{int(table['selected'].sum())} of {len(table)} candidate features selected.",
        "",
        "| rank | feature | frequency | mean norm gain | score |",
        "|---:|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r.rank} | {r.feature} | {r.frequency:.3f} | {r.mean_norm_gain:.4f} | {r.score:.5f} |"
        for r in sel.itertuples()
    ]
    return "\n".join(lines) + "\n"


def plot_importance(
    path: str | Path, table: pd.DataFrame, top_n: int = 40, title: str = "Feature selection"
) -> None:
    """Horizontal bars of score for the `top_n` best-ranked features, frequency written beside each (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    head = table.sort_values("rank").head(top_n).iloc[::-1]
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.22 * len(head) + 1.2)))
    colors = ["tab:blue" if s else "tab:gray" for s in head["selected"]]
    ax.barh(head["feature"], head["score"], color=colors)
    for y, (score, freq) in enumerate(zip(head["score"], head["frequency"])):
        ax.text(score, y, f" {freq:.0%}", va="center", fontsize=7)
    ax.set_xlabel("score = mean normalised gain over variants (absent = 0); label = frequency")
    ax.set_title(f"{title}: top {len(head)} of {len(table)} ({int(table['selected'].sum())} selected)")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
