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
    rows = dict(rows, label_end=targets["label_end"].to_numpy().astype(np.int64))  # for the purged OOF folds
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
    fence = {"label_end": rows["label_end"], "embargo": 5}
    ens, scores, _ = ep.fit_ensemble(members, probas, rows, labels, spec, **fence)
    assert ens.fitted_on.get("segment") in (None, "validation")
    assert scores["chosen"] == ("stacker" if scores["stacker_oof"] > scores["average"] else "average")
    assert 0 < scores["average"] < 1 and 0 < scores["stacker_oof"] < 1
    stk, _, _ = ep.fit_ensemble(members, probas, rows, labels, spec | {"kind": "stacker"}, **fence)
    assert stk.kind == "stacker" and stk.fitted_on["rows"] == len(rows["validation"])
    # Test rows never reach the fit: scrambling them leaves the stacker unchanged.
    scrambled = {k: v.copy() for k, v in probas.items()}
    for v in scrambled.values():
        v[rows["test"]] = v[rows["test"]][::-1]
    stk2, _, _ = ep.fit_ensemble(members, scrambled, rows, labels, spec | {"kind": "stacker"}, **fence)
    np.testing.assert_array_equal(stk.coef, stk2.coef)
    # The better member gets the larger weight in the stacker (its log-probabilities carry the signal).
    w5, w20 = np.abs(stk.coef[:, :3]).sum(), np.abs(stk.coef[:, 3:]).sum()
    assert w5 > w20
    doc = ensembles.to_dict(stk)
    assert ensembles.from_dict(doc).member_names == ["w5", "w20"]
    with pytest.raises(ValueError, match="bad.json: not a"):
        ensembles.from_dict({"format": "x"}, where="bad.json")


def test_stacker_oof_folds_are_purged_and_embargoed_by_the_horizon(real, monkeypatch):
    """Issue 14 item 9: the stacker's out-of-fold folds come from purged_walk_forward with the label horizon
    as embargo; every fold passes the independent purge check."""
    from workflow_scripts.data import purged_walk_forward as pwf

    labels, rows, probas = real
    seen, original = [], pwf.purged_walk_forward

    def spy(*args, **kwargs):
        seen.append((args, kwargs, original(*args, **kwargs)))
        return seen[-1][2]

    from workflow_scripts.models import ensembles

    monkeypatch.setattr(ensembles, "purged_walk_forward", spy)  # the name the stacker calls
    spec = {"kind": "stacker", "C": 1.0, "oof_folds": 4}
    _, scores, oof = ep.fit_ensemble(
        [{"name": "w5"}, {"name": "w20"}], probas, rows, labels, spec, label_end=rows["label_end"], embargo=7
    )
    ((args, kwargs, folds),) = seen
    val = rows["validation"]
    assert kwargs["embargo"] == 7 and kwargs["n_folds"] == 4
    pwf.check_purged_folds(val, rows["label_end"][val], folds, embargo=7)
    for tr, va in folds:  # explicitly: no training label (plus embargo) reaches the fold's first bar
        assert (rows["label_end"][val][tr] + 7 < val[va[0]]).all()
    predicted = np.concatenate([va for _, va in folds])
    assert ensembles.oof_rows(oof).sum() == len(predicted) == scores["oof_rows"] < len(val)
    assert np.isnan(oof[: predicted.min()]).all()  # the first block is never predicted out of fold


def test_stacker_threshold_reads_only_oof_probabilities(real):
    """The threshold is chosen on a frame whose validation rows are the purged out-of-fold probabilities:
    changing the in-sample fit (the stacker fitted on all validation rows) changes nothing there, and a
    perturbation of a later fold's rows never moves an earlier fold's prediction."""
    labels, rows, probas = real
    members = [{"name": "w5"}, {"name": "w20"}]
    spec = {"kind": "stacker", "C": 1.0, "oof_folds": 4}
    stk, _, oof = ep.fit_ensemble(members, probas, rows, labels, spec, label_end=rows["label_end"], embargo=5)
    val, scored = rows["validation"], rows["scored"]
    fitted = ensembles.predict_proba(stk, probas)
    bent = ensembles.Ensemble(  # another in-fold fit: the choice must not see it on validation rows
        "stacker", stk.members, coef=-3 * stk.coef, intercept=stk.intercept, fitted_on=stk.fitted_on
    )
    other = ensembles.predict_proba(bent, probas)
    a = ep.choice_predictions(scored, fitted, val, oof)
    b = ep.choice_predictions(scored, other, val, oof)
    on_val = a["pos"].isin(val).to_numpy()
    assert set(a["pos"][on_val]) == set(val[ensembles.oof_rows(oof)])  # only rows with an OOF prediction
    np.testing.assert_array_equal(a[on_val].to_numpy(), b[on_val].to_numpy())
    np.testing.assert_allclose(a[on_val].iloc[:, 1:].to_numpy(), oof[ensembles.oof_rows(oof)])
    assert not np.allclose(a[~on_val].iloc[:, 1:].to_numpy(), b[~on_val].iloc[:, 1:].to_numpy())
    # Perturb the last validation block (labels and member probabilities): earlier folds' OOF rows stay put.
    last = val[-(len(val) // 5) :]  # the last fold's validation block
    labels2 = labels.copy()
    labels2[last] = np.where(np.isin(labels[last], (0, 1, 2)), (labels[last] + 1) % 3, labels[last])
    probas2 = {k: v.copy() for k, v in probas.items()}
    for v in probas2.values():
        v[last] = v[last][:, ::-1]
    _, _, oof2 = ep.fit_ensemble(
        members, probas2, rows, labels2, spec, label_end=rows["label_end"], embargo=5
    )
    early = ensembles.oof_rows(oof) & (val < last[0])
    assert early.any()
    np.testing.assert_array_equal(oof[early], oof2[early])
    # The average is not fitted: its choice frame is its own probabilities.
    avg = ep.choice_predictions(scored, fitted, val, None)
    assert len(avg) == len(scored)
