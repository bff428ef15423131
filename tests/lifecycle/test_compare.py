"""lifecycle/compare.py: Newey-West by hand and by simulation, the champion rule and its recorded reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workflow_scripts.lifecycle import compare as cmp

RULES = {"alpha": 0.05, "min_bars": 100, "min_trades": 5}
HOUR = 3600


def test_default_lag_rule():
    assert [cmp.default_lags(n) for n in (0, 10, 100, 500, 1000, 5000)] == [0, 2, 4, 5, 6, 9]


def test_newey_west_by_hand():
    # x = 1, 2, 3, 4, 5, 10: mean 25/6; e = x - mean; n = 6; default lag floor(4 (0.06)^(2/9)) = 2.
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 10.0])
    e = x - 25 / 6
    g0 = sum(e * e) / 6
    g1 = sum(e[1:] * e[:-1]) / 6
    g2 = sum(e[2:] * e[:-2]) / 6
    assert cmp.default_lags(6) == 2
    # Bartlett weights 1 - j / (L + 1): 2/3, 1/3.
    lrv = g0 + 2 * (2 / 3) * g1 + 2 * (1 / 3) * g2
    assert cmp.newey_west_variance(x) == pytest.approx(lrv, rel=1e-12)
    assert cmp.newey_west_variance(x, lags=0) == pytest.approx(np.var(x), rel=1e-12)
    assert cmp.newey_west_se(x) == pytest.approx(math.sqrt(lrv / 6), rel=1e-12)
    # By hand, in fractions: gamma_0 = 305/36, gamma_1 = 515/216, gamma_2 = 76/216, so the long-run
    # variance is 305/36 + (4/3)(515/216) + (2/3)(76/216) = 7702/648.
    assert (g0, g1, g2) == pytest.approx((305 / 36, 515 / 216, 76 / 216), rel=1e-12)
    assert cmp.newey_west_variance(x) == pytest.approx(7702 / 648, rel=1e-12)


def test_paired_test_by_hand():
    a = np.array([0.01, 0.02, -0.01, 0.03, 0.00, 0.02])
    b = np.zeros(6)
    t = cmp.paired_hac_test(a, b)
    se = cmp.newey_west_se(a)
    assert t["mean_diff"] == pytest.approx(a.mean()) and t["se"] == pytest.approx(se)
    assert t["statistic"] == pytest.approx(a.mean() / se)
    assert t["p_value"] == pytest.approx(0.5 * math.erfc(t["statistic"] / math.sqrt(2)))
    assert cmp.paired_hac_test(a, a)["p_value"] is None  # identical series: nothing to test


def test_ar1_null_rejects_about_five_percent():
    """Differences that are AR(1) (phi 0.5, like overlapping trades) with mean 0: the HAC test rejects at 5 %
    about 5 % of the time; a naive iid t-test would reject far more often."""
    rng = np.random.default_rng(7)
    n, reps, phi = 1000, 2000, 0.5
    rejected = naive = 0
    for _ in range(reps):
        eps = rng.standard_normal(n)
        d = np.empty(n)
        d[0] = eps[0] / math.sqrt(1 - phi**2)
        for t in range(1, n):
            d[t] = phi * d[t - 1] + eps[t]
        rejected += cmp.paired_hac_test(d, np.zeros(n))["p_value"] < 0.05
        naive += 0.5 * math.erfc(d.mean() / (d.std(ddof=1) / math.sqrt(n)) / math.sqrt(2)) < 0.05
    rate = rejected / reps
    assert 0.03 <= rate <= 0.085, rate
    assert naive / reps > 0.12  # the iid error is too small under autocorrelation


def _ev(vin, returns, start=0, trades=None, **kw):
    ts = (np.arange(len(returns)) + start) * HOUR
    if trades is None:
        trades = np.column_stack([ts[::10], ts[::10] + 5 * HOUR])
        trades = trades[trades[:, 1] <= ts[-1]]
    return cmp.Evidence(vin, ts, np.asarray(returns, dtype=float), trades, **kw)


def test_significantly_better_challenger_replaces_and_reason_is_pinned():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, 600)
    champ = _ev("CHAMP", noise)
    chall = _ev("CHALL", noise + 0.004, start=100)  # 500 common bars: positions 100..599
    out = cmp.compare(chall, champ, RULES)
    r = out["reason"]
    assert out["beats"] is True
    assert r["measure"] == cmp.MEASURE and r["source"] == "validation" and r["alpha"] == 0.05
    assert r["bars"] == {"count": 500, "first": "1970-01-05T04:00:00Z", "last": "1970-01-25T23:00:00Z"}
    assert r["test"]["n"] == 500 and r["test"]["lags"] == cmp.default_lags(500)
    assert r["test"]["p_value"] < 1e-6 and r["why"].startswith("significantly better")
    assert r["trades"]["challenger"] == 50


def test_not_significant_and_insufficient_evidence_keep_the_champion():
    rng = np.random.default_rng(2)
    champ = _ev("CHAMP", rng.normal(0, 0.01, 600))
    same = _ev("CHALL", champ.returns + rng.normal(0, 0.01, 600) * 0.01)
    out = cmp.compare(same, champ, RULES)
    assert out["beats"] is False and out["reason"]["why"].startswith("not significantly better")
    assert 0.05 <= out["reason"]["test"]["p_value"] <= 1
    short = _ev("CHALL", champ.returns[:50] + 0.01, start=550)
    out = cmp.compare(short, champ, RULES)
    assert out["beats"] is False and out["reason"]["test"] is None
    assert out["reason"]["why"] == "insufficient evidence: 50 bars compared < min_bars 100"
    few = _ev("CHALL", champ.returns + 0.01, trades=np.zeros((2, 2)))
    assert "2 challenger trades < min_trades 5" in cmp.compare(few, champ, RULES)["reason"]["why"]


def test_in_sample_evidence_is_not_evidence():
    rng = np.random.default_rng(3)
    champ = _ev("CHAMP", rng.normal(0, 0.01, 600))
    stacker = _ev("ENS", champ.returns + 0.01, usable=False, note="fitted on these bars")
    out = cmp.compare(stacker, champ, RULES)
    assert out["beats"] is False and "not usable" in out["reason"]["why"]
    # a champion without usable evidence gives way to a newcomer whose own evidence reaches the minima
    out = cmp.compare(champ, None, RULES)
    assert out["beats"] is True and out["reason"]["why"].startswith("champion has no usable evidence")


def test_first_champion_needs_the_minima():
    rng = np.random.default_rng(4)
    assert cmp.judge_first(_ev("A", rng.normal(0, 0.01, 600)), RULES)["beats"] is True
    out = cmp.judge_first(_ev("A", rng.normal(0, 0.01, 60)), RULES)
    assert out["beats"] is False and "60 bars compared < min_bars 100" in out["reason"]["why"]
    assert cmp.judge_first(None, RULES)["reason"]["why"] == "no validation evidence"


def test_paper_evidence_is_used_when_both_have_enough():
    rng = np.random.default_rng(5)
    val = (_ev("B", rng.normal(0, 0.01, 600)), _ev("A", rng.normal(0, 0.01, 600)))
    paper = (
        _ev("B", rng.normal(0, 0.01, 300), start=10_000, source="paper"),
        _ev("A", rng.normal(0, 0.01, 300), start=10_000, source="paper"),
    )
    assert cmp.choose_evidence(val, paper, RULES) is paper
    assert cmp.choose_evidence(val, (paper[0], None), RULES) is val
    assert cmp.choose_evidence(val, None, RULES) is val
    out = cmp.compare(*cmp.choose_evidence(val, paper, RULES), RULES)
    assert out["reason"]["source"] == "paper" and out["reason"]["bars"]["count"] == 300


def test_demotion_floor():
    spec = {"min_bars": 100, "min_trades": 5, "sharpe_floor": 0.0}
    rng = np.random.default_rng(6)
    losing = _ev("A", rng.normal(-0.002, 0.01, 400), source="paper")
    out = cmp.demotion(losing, spec)
    assert out["demote"] is True and out["reason"]["sharpe"] < 0 and out["reason"]["floor"] == 0.0
    winning = _ev("A", rng.normal(0.002, 0.01, 400), source="paper")
    assert cmp.demotion(winning, spec)["demote"] is False
    assert cmp.demotion(_ev("A", losing.returns[:50], source="paper"), spec)["demote"] is False
    assert cmp.demotion(None, spec)["demote"] is False


def test_evidence_from_document_round_trip():
    doc = {
        "segment": "validation",
        "timestamps_s": [0, 3600, 7200],
        "returns": [0.0, 0.01, -0.005],
        "trades": [[3600, 7200]],
        "bars_per_year": 8760,
        "in_sample_fit": False,
    }
    ev = cmp.evidence_from_document("V", doc)
    assert ev.usable and len(ev.trades) == 1 and ev.source == "validation"
    assert not cmp.evidence_from_document("V", doc | {"in_sample_fit": True}).usable
