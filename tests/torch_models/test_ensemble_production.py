"""Ensemble production pieces on their own: reference member, member union, average vs stacker choice on the
validation rows only (real BTCUSDT labels; members are noisy views of them)."""

import numpy as np
import pytest
from _torch_helpers import RAW

from workflow_scripts.data import ingest, splits
from workflow_scripts.models import ensembles
from workflow_scripts.targets import swing_targets
from workflow_scripts.targets.grammar import target_grid
from workflow_scripts.training import ensemble_production as ep


@pytest.fixture(scope="module")
def real():
    path = ingest.find_raw_file(RAW, "BTCUSDT")
    bars = ingest.normalise_bars(ingest.read_raw(path), str(path)).iloc[-3000:].reset_index(drop=True)
    grid = target_grid({"types": ["high_breakout"], "std_thresholds": [1.0], "barrier_thresholds": [1.0]})
    targets = swing_targets.build_targets(bars, 5, grid, 5, 24)
    labels = targets[grid[0]["id"]].to_numpy()
    split = splits.chronological_split(bars["timestamp"], 5, 0.6, 0.2, 24)
    from workflow_scripts.training.stage1 import variant_rows

    rows = variant_rows(labels, split, targets["label_end"].to_numpy().astype(np.int64))
    rng = np.random.default_rng(0)
    probas = {}
    for name, noise in (("w5", 1.0), ("w20", 2.5)):
        logits = rng.normal(scale=noise, size=(len(labels), 3))
        ok = np.isin(labels, (0, 1, 2))
        logits[np.flatnonzero(ok), labels[ok].astype(int)] += 1.5
        p = np.exp(logits)
        probas[name] = p / p.sum(axis=1, keepdims=True)
    return labels, rows, probas


def test_reference_is_the_best_validation_ap_ties_to_the_smaller_window():
    metrics = {
        "w5": {"validation_average_precision": 0.4},
        "w20": {"validation_average_precision": 0.5},
        "w10": {"validation_average_precision": float("nan")},
    }
    windows = {"w5": 5, "w20": 20, "w10": 10}
    assert ep.choose_reference(metrics, windows) == "w20"
    metrics["w5"]["validation_average_precision"] = 0.5
    assert ep.choose_reference(metrics, windows) == "w5"
    assert ep.union_features([["a", "b"], ["b", "c", "a"]]) == ["a", "b", "c"]


def test_fit_uses_validation_rows_only_and_auto_picks_the_better(real):
    labels, rows, probas = real
    members = [{"name": "w5"}, {"name": "w20"}]
    spec = {"kind": "auto", "C": 1.0, "oof_folds": 4}
    ens, scores = ep.fit_ensemble(members, probas, rows, labels, spec)
    assert ens.fitted_on.get("segment") in (None, "validation")
    assert scores["chosen"] == ("stacker" if scores["stacker_oof"] > scores["average"] else "average")
    assert 0 < scores["average"] < 1 and 0 < scores["stacker_oof"] < 1
    stk, _ = ep.fit_ensemble(members, probas, rows, labels, spec | {"kind": "stacker"})
    assert stk.kind == "stacker" and stk.fitted_on["rows"] == len(rows["validation"])
    # Test rows never reach the fit: scrambling them leaves the stacker unchanged.
    scrambled = {k: v.copy() for k, v in probas.items()}
    for v in scrambled.values():
        v[rows["test"]] = v[rows["test"]][::-1]
    stk2, _ = ep.fit_ensemble(members, scrambled, rows, labels, spec | {"kind": "stacker"})
    np.testing.assert_array_equal(stk.coef, stk2.coef)
    # The better member gets the larger weight in the stacker (its log-probabilities carry the signal).
    w5, w20 = np.abs(stk.coef[:, :3]).sum(), np.abs(stk.coef[:, 3:]).sum()
    assert w5 > w20
    doc = ensembles.to_dict(stk)
    assert ensembles.from_dict(doc).member_names == ["w5", "w20"]
    with pytest.raises(ValueError, match="bad.json: not a"):
        ensembles.from_dict({"format": "x"}, where="bad.json")
