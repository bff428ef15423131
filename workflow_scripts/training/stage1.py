"""Stage 1: every target variant of one (symbol, window) with fixed LightGBM parameters.

One job per (symbol, window) loops over its targets (docs/ARCHITECTURE.md says why): the feature table is read
once, and LightGBM's binned dataset is built once over the union of the window's training event rows (bin
edges from training rows only) and once for the validation rows against it; each variant takes a `subset` of
both. The subset is constructed BEFORE its labels are set: LightGBM silently ignores a label set on an
unconstructed subset.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.data.splits import SEGMENTS, segment_mask
from workflow_scripts.evaluation.metrics import macro_average_precision
from workflow_scripts.models.heads import DATASET_KEYS
from workflow_scripts.targets.swing_targets import BREAKOUT, CLASS_NAMES, NEITHER, NO_EVENT, REVERSION

CLASSES = (NEITHER, BREAKOUT, REVERSION)
# Per variant folder; metrics.json records model_sha256.
MODEL_FILE, METRICS_FILE = "model.txt", "metrics.json"


@dataclass
class VariantResult:
    target: str
    model_text: str  # empty when the variant was skipped
    metrics: dict
    split_indices: dict
    predictions: pd.DataFrame  # every event bar of validation and test (ambiguous and unknown included)


def class_counts(y: np.ndarray) -> dict:
    return {CLASS_NAMES[c]: int((y == c).sum()) for c in CLASSES}


def variant_rows(labels: np.ndarray, split: dict, label_end: np.ndarray) -> dict[str, np.ndarray]:
    """Bar positions of trainable event rows (codes 0/1/2) per segment, plus `scored`: every event bar of
    validation and test whatever its label, which a live model would have been asked about."""
    positions = np.arange(len(labels))
    usable = np.isin(labels, CLASSES)
    rows = {seg: positions[usable & segment_mask(split, seg, positions, label_end)] for seg in SEGMENTS}
    in_scored = segment_mask(split, "validation", positions, label_end) | segment_mask(
        split, "test", positions, label_end
    )
    rows["scored"] = positions[(labels != NO_EVENT) & in_scored]
    return rows


def train_window(
    features: pd.DataFrame,
    targets: pd.DataFrame,
    split: dict,
    target_ids: list[str],
    spec: dict,
    threads: int = 1,
) -> list[VariantResult]:
    import lightgbm as lgb  # here, not at the top: it pulls in scikit-learn, ~1.3 s of every job's start

    if not features["timestamp"].equals(targets["timestamp"]):
        raise ValueError("features and targets are not aligned on the same bars (timestamp columns differ)")
    feature_names = [c for c in features.columns if c != "timestamp"]
    label_end = targets["label_end"].to_numpy()
    rows = {t: variant_rows(targets[t].to_numpy(), split, label_end) for t in target_ids}

    params = dict(spec["params"], num_threads=threads)
    ds_params = {k: params[k] for k in DATASET_KEYS if k in params} | {
        "num_threads": threads,
        "feature_pre_filter": False,
    }
    union = {
        seg: np.unique(np.concatenate([r[seg] for r in rows.values()])) for seg in ("train", "validation")
    }
    X = features[feature_names]
    train_all = lgb.Dataset(
        X.iloc[union["train"]].to_numpy(np.float32),
        feature_name=feature_names,
        params=ds_params,
        free_raw_data=False,
    ).construct()
    val_all = lgb.Dataset(
        X.iloc[union["validation"]].to_numpy(np.float32),
        feature_name=feature_names,
        reference=train_all,
        params=ds_params,
        free_raw_data=False,
    ).construct()
    test_X = X.to_numpy(np.float32)  # test rows are looked up per variant; the table is already in memory

    results = []
    for target in target_ids:
        r = rows[target]
        labels = targets[target].to_numpy()
        results.append(_train_variant(target, labels, r, union, train_all, val_all, test_X, params, spec))
    return results


def _train_variant(target, labels, rows, union, train_all, val_all, test_X, params, spec) -> VariantResult:
    import lightgbm as lgb  # here, not at the top: it pulls in scikit-learn, ~1.3 s of every job's start

    y = {seg: labels[rows[seg]].astype(np.int64) for seg in SEGMENTS}
    split_indices = {seg: rows[seg].tolist() for seg in SEGMENTS}
    metrics = {
        "target": target,
        "class_counts": {seg: class_counts(y[seg]) for seg in SEGMENTS},
        "rows": {seg: int(len(rows[seg])) for seg in SEGMENTS},
        "feature_count": int(train_all.num_feature()),
    }
    reason = _skip_reason(y, spec)
    if reason:
        metrics |= {"status": "skipped", "reason": reason}
        return VariantResult(target, "", metrics, split_indices, prediction_frame(rows["scored"], None))

    train_ds = train_all.subset(np.searchsorted(union["train"], rows["train"]).tolist()).construct()
    train_ds.set_label(y["train"])
    val_ds = val_all.subset(np.searchsorted(union["validation"], rows["validation"]).tolist()).construct()
    val_ds.set_label(y["validation"])

    started = time.perf_counter()
    booster = lgb.train(
        params,
        train_ds,
        num_boost_round=spec["num_boost_round"],
        valid_sets=[val_ds],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(spec["early_stopping_rounds"], verbose=False)],
    )
    fit_seconds = time.perf_counter() - started
    best = booster.best_iteration or booster.current_iteration()
    scored = booster.predict(test_X[rows["scored"]], num_iteration=best)
    where = {seg: np.searchsorted(rows["scored"], rows[seg]) for seg in ("validation", "test")}
    proba_val, proba_test = scored[where["validation"]], scored[where["test"]]
    metrics |= {
        "status": "trained",
        "best_iteration": int(best),
        "fit_seconds": round(fit_seconds, 3),
        "validation_average_precision": macro_average_precision(y["validation"], proba_val),
        "test_average_precision": macro_average_precision(y["test"], proba_test),
        "validation_multi_logloss": float(booster.best_score["validation"]["multi_logloss"]),
    }
    return VariantResult(
        target,
        booster.model_to_string(num_iteration=best),
        metrics,
        split_indices,
        prediction_frame(rows["scored"], scored),
    )


def prediction_frame(positions: np.ndarray, proba: np.ndarray | None) -> pd.DataFrame:
    """Bar position and class probabilities (NaN for a skipped variant): what evaluation needs, no model."""
    proba = np.full((len(positions), 3), np.nan) if proba is None else proba
    return pd.DataFrame(
        {
            "pos": positions.astype(np.int64),
            "p_neither": proba[:, 0],
            "p_breakout": proba[:, 1],
            "p_reversion": proba[:, 2],
        }
    )


def _skip_reason(y: dict, spec: dict) -> str | None:
    if len(y["train"]) < spec["min_train_rows"]:
        return f"{len(y['train'])} training rows < stage1.min_train_rows={spec['min_train_rows']}"
    for seg in ("train", "validation"):
        counts = np.bincount(y[seg], minlength=3)
        if counts.min() < spec["min_class_rows"]:
            return (
                f"{seg} class counts {counts.tolist()} (neither, breakout, reversion) below "
                f"stage1.min_class_rows={spec['min_class_rows']}"
            )
    return None


def verified_model_sha256(folder: str | Path) -> str:
    """The sha256 of a variant's model.txt as recorded in its metrics.json (`model_sha256`), after checking
    that the file on disk still has it: a truncated, garbled or replaced model is refused (ValueError naming
    both files) before anything uses it."""
    folder = Path(folder)
    metrics_path = folder / METRICS_FILE
    recorded = artifacts.read_json(metrics_path).get("model_sha256")
    if not isinstance(recorded, str):
        raise ValueError(
            f"{metrics_path}: no model_sha256 recorded for {folder / MODEL_FILE}; rerun train_stage1"
        )
    artifacts.read_verified(folder / MODEL_FILE, recorded, metrics_path)
    return recorded
