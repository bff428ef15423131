"""Stage 1: every variant trains on its own labels from the shared binned dataset; results are
deterministic."""

import copy

import lightgbm as lgb
import numpy as np
import pandas as pd
import yaml

from tests.conftest import ROOT, hourly
from workflow_scripts.data.splits import chronological_split
from workflow_scripts.evaluation.best_variant import best_of
from workflow_scripts.training.stage1 import train_window

SPEC = yaml.safe_load((ROOT / "config/stage1/default.yaml").read_text())
A, B = "high_breakout_k1.0_th0.5", "high_reversion_k1.0_th0.5"


def synthetic(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    ts = hourly(n)
    event = rng.random(n) < 0.5
    label_a = np.where(event, rng.integers(0, 3, n), -1).astype(np.int8)
    label_b = np.where(event, rng.integers(0, 3, n), -1).astype(np.int8)
    targets = pd.DataFrame({"timestamp": ts, "label_end": np.arange(n) + 3, A: label_a, B: label_b})
    features = pd.DataFrame(
        {
            "timestamp": ts,
            "reveals_a": (label_a + rng.normal(0, 0.05, n)).astype(np.float32),
            "reveals_b": (label_b + rng.normal(0, 0.05, n)).astype(np.float32),
            **{f"noise_{i}": rng.normal(size=n).astype(np.float32) for i in range(5)},
        }
    )
    split = chronological_split(ts, 3, 0.6, 0.2, 2)
    return features, targets, split


def test_each_variant_trains_on_its_own_labels():
    features, targets, split = synthetic()
    results = {r.target: r for r in train_window(features, targets, split, [A, B], SPEC)}
    for target, feature in ((A, "reveals_a"), (B, "reveals_b")):
        m = results[target].metrics
        assert m["status"] == "trained"
        assert m["validation_average_precision"] > 0.95 and m["test_average_precision"] > 0.95
        booster = lgb.Booster(model_str=results[target].model_text)
        gain = dict(zip(booster.feature_name(), booster.feature_importance("gain")))
        assert max(gain, key=gain.get) == feature


def test_rows_respect_segments_and_deterministic_bytes():
    features, targets, split = synthetic()
    first = train_window(features, targets, split, [A, B], SPEC)
    second = train_window(features, targets, split, [A, B], SPEC)
    for r1, r2 in zip(first, second):
        assert r1.model_text == r2.model_text
        m1 = {k: v for k, v in r1.metrics.items() if k != "fit_seconds"}
        m2 = {k: v for k, v in r2.metrics.items() if k != "fit_seconds"}
        assert m1 == m2
        idx = r1.split_indices
        assert (
            max(idx["train"]) + 3 < split["validation"]["lo"]
            and min(idx["validation"]) >= split["validation"]["lo"]
        )
        assert max(idx["validation"]) + 3 < split["test"]["lo"] and min(idx["test"]) >= split["test"]["lo"]


def test_too_few_rows_is_skipped_with_reason_and_never_chosen():
    features, targets, split = synthetic()
    spec = copy.deepcopy(SPEC)
    targets[B] = np.where(np.arange(len(targets)) < 100, targets[B], -1).astype(np.int8)
    results = train_window(features, targets, split, [A, B], spec)
    skipped = [r for r in results if r.target == B][0]
    assert skipped.metrics["status"] == "skipped" and "min_train_rows" in skipped.metrics["reason"]
    assert skipped.model_text == ""
    choice = best_of("BTCUSDT", 5, "high", [r.metrics for r in results])
    assert choice["best"]["target"] == A and choice["skipped"] == 1
