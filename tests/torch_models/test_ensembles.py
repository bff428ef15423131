"""Ensembles: average and validation-fitted stacker, JSON round trip, members listed."""

import json

import numpy as np
import pytest

from workflow_scripts.models import ensembles as ens


def _probas(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    out = {}
    for i, noise in enumerate((0.8, 1.2, 3.0)):
        logits = rng.normal(scale=noise, size=(n, 3))
        logits[np.arange(n), y] += 1.0
        p = np.exp(logits)
        out[f"head{i}"] = p / p.sum(axis=1, keepdims=True)
    return out, y


MEMBERS = [
    {"name": "head0", "vin": "V0", "model_type": "lightgbm", "sha256": "a" * 64},
    {"name": "head1", "vin": "V1", "model_type": "torchscript", "sha256": "b" * 64},
]


def _logloss(p, y):
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def test_average():
    p, _y = _probas()
    e = ens.fit_average(MEMBERS, weights=[3, 1])
    out = ens.predict_proba(e, p)
    np.testing.assert_allclose(out, 0.75 * p["head0"] + 0.25 * p["head1"])
    assert out.shape == (400, 3) and np.allclose(out.sum(axis=1), 1)


def test_stacker_fitted_on_validation_round_trips_through_json(tmp_path):
    p, y = _probas()
    val = slice(0, 200)
    e = ens.fit_stacker(MEMBERS, {k: v[val] for k, v in p.items()}, y[val], C=1.0)
    assert e.fitted_on["segment"] == "validation" and e.fitted_on["rows"] == 200 and e.fitted_on["converged"]
    assert e.coef.shape == (3, 6)
    doc = ens.save_ensemble(tmp_path, e)
    assert doc["members"] == MEMBERS and ens.registry_members(e) == MEMBERS
    json.loads((tmp_path / ens.ENSEMBLE_FILE).read_text())  # plain JSON
    back = ens.load_ensemble(tmp_path)
    test = {k: v[200:] for k, v in p.items()}
    np.testing.assert_array_equal(ens.predict_proba(back, test), ens.predict_proba(e, test))
    # better than the weaker member on unseen rows
    assert _logloss(ens.predict_proba(e, test), y[200:]) < _logloss(test["head1"], y[200:])


def test_stacker_is_deterministic_and_ignores_test_rows():
    p, y = _probas()
    a = ens.fit_stacker(MEMBERS, {k: v[:200] for k, v in p.items()}, y[:200])
    b = ens.fit_stacker(MEMBERS, {k: v[:200].copy() for k, v in p.items()}, y[:200].copy())
    assert ens.to_dict(a) == ens.to_dict(b)


def test_stacker_copes_with_a_missing_class():
    p, y = _probas()
    keep = y != 2
    e = ens.fit_stacker(MEMBERS, {k: v[keep] for k, v in p.items()}, y[keep])
    out = ens.predict_proba(e, p)
    assert out.shape == (400, 3) and np.isfinite(out).all() and out[:, 2].max() < 0.2


def test_members_must_be_present_and_shaped():
    p, _y = _probas()
    e = ens.fit_average(MEMBERS)
    with pytest.raises(ValueError, match="missing for ensemble member"):
        ens.predict_proba(e, {"head0": p["head0"]})
    with pytest.raises(ValueError, match=r"must be \(400, 3\)"):
        ens.predict_proba(e, {"head0": p["head0"], "head1": p["head1"][:, :2]})
    with pytest.raises(ValueError, match="distinct"):
        ens.fit_average(["a", "a"])


def test_select_members_and_oof():
    assert ens.select_members({"a": 0.4, "b": float("nan"), "c": 0.6, "d": 0.4}, top_k=2) == ["c", "a"]
    p, y = _probas()
    pos = np.arange(200) * 3  # events every 3 bars, labels 5 bars long, embargo 5 bars
    fence = {"positions": pos, "label_end": pos + 5, "embargo": 5}
    oof = ens.stacker_oof_proba(MEMBERS, {k: v[:200] for k, v in p.items()}, y[:200], n_folds=4, **fence)
    ok = ens.oof_rows(oof)
    assert oof.shape == (200, 3) and np.allclose(oof[ok].sum(axis=1), 1)
    assert (
        ok.sum() == 4 * (200 // 5) and not ok[: 200 - 4 * 40].any()
    )  # walk-forward: first block unpredicted
