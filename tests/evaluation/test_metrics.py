import math
from itertools import pairwise

import numpy as np
import pytest

from workflow_scripts.evaluation import metrics as M


def test_annualisation_uses_sqrt_8760_on_hourly_bars():
    assert M.BARS_PER_YEAR == 24 * 365
    r = np.array([0.003, -0.001, 0.003, -0.001])
    # mean 0.001, sample std 0.002 * sqrt(4/3) -> per-bar Sharpe sqrt(3)/4
    assert M.sharpe_ratio(r) == pytest.approx(math.sqrt(3) / 4)
    assert M.sharpe_ratio(r, M.BARS_PER_YEAR) == pytest.approx(math.sqrt(3) / 4 * math.sqrt(8760))
    # downside deviation sqrt(mean([0, 1e-6, 0, 1e-6])) -> per-bar Sortino sqrt(2)
    assert M.sortino_ratio(r, M.BARS_PER_YEAR) == pytest.approx(math.sqrt(2) * math.sqrt(8760))


def test_drawdown_and_trading_metrics_on_a_known_path():
    bars = np.array([0.10, -0.20, 0.0, 0.25, -0.1])
    eq = M.equity_curve(bars)  # 1, 1.1, 0.88, 0.88, 1.1, 0.99
    np.testing.assert_allclose(eq, [1, 1.1, 0.88, 0.88, 1.1, 0.99])
    assert M.max_drawdown(eq) == pytest.approx(0.2)
    m = M.trading_metrics(bars, np.array([0.1, -0.2, 0.25, -0.1]), held_bars=4, bars_per_year=5)
    assert m["total_return"] == pytest.approx(-0.01)
    assert m["annual_return"] == pytest.approx(-0.01)  # one "year" of 5 bars
    assert m["hit_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(0.35 / 0.30)
    assert m["turnover"] == pytest.approx(8.0)  # 4 trades x (entry + exit) per year
    assert m["exposure"] == pytest.approx(0.8)


def test_no_trades_gives_defined_values():
    m = M.trading_metrics(np.zeros(100), np.array([]), 0)
    assert m["n_trades"] == 0 and m["total_return"] == 0.0 and m["sharpe"] is None and m["hit_rate"] is None


def test_psr_normal_case_formula():
    # skew 0, kurtosis 3: PSR = Phi(SR sqrt(n-1) / sqrt(1 + SR^2 / 2))
    sr, n = 0.1, 101
    z = sr * 10 / math.sqrt(1 + sr * sr / 2)
    assert M.probabilistic_sharpe_ratio(sr, n) == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2)))
    assert M.probabilistic_sharpe_ratio(0.0, n) == pytest.approx(0.5)


def test_dsr_worked_example_bailey_lopez_de_prado_2014():
    """The numerical example of "The Deflated Sharpe Ratio" (Bailey & Lopez de Prado, JPM 2014):
    N = 100 trials, variance of the trials' annualised Sharpes V = 0.5, best annualised SR = 2.5 on T = 1250
    daily returns (250 per year), skewness -3, kurtosis 10. The paper reports E[max SR] ~ 0.1132 (daily,
    non-annualised) and DSR ~ 0.9004."""
    n_trials, v_annual, sr_annual, t, skew, kurt = 100, 0.5, 2.5, 1250, -3.0, 10.0
    sr0_annual = M.expected_max_sharpe(n_trials, v_annual)
    assert sr0_annual / math.sqrt(250) == pytest.approx(0.1132, abs=5e-5)
    out = M.deflated_sharpe_ratio(sr_annual / math.sqrt(250), t, n_trials, v_annual / 250, skew, kurt)
    assert out["sr0"] == pytest.approx(0.1132, abs=5e-5)
    assert out["dsr"] == pytest.approx(0.9004, abs=5e-5)
    # the same number as PSR against the deflated benchmark
    assert M.probabilistic_sharpe_ratio(
        sr_annual / math.sqrt(250), t, skew, kurt, out["sr0"]
    ) == pytest.approx(out["dsr"])


def test_expected_max_sharpe_grows_with_trials_and_single_trial_is_psr():
    v = 0.01
    vals = [M.expected_max_sharpe(n, v) for n in (1, 2, 10, 100, 1000)]
    assert vals[0] == 0.0 and all(a < b for a, b in pairwise(vals))
    single = M.deflated_sharpe_ratio(0.2, 50, 1, v)
    assert single["dsr"] == pytest.approx(M.probabilistic_sharpe_ratio(0.2, 50))


def test_moments_match_scipy_population_definitions():
    from scipy import stats

    r = np.random.default_rng(1).standard_t(4, 500)
    skew, kurt = M.moments(r)
    assert skew == pytest.approx(stats.skew(r)) and kurt == pytest.approx(stats.kurtosis(r, fisher=False))


def test_classifier_metrics_match_sklearn():
    from sklearn.metrics import average_precision_score, log_loss, precision_score, recall_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 400)
    p = rng.dirichlet([1, 1, 1], 400)
    p[:50] = np.round(p[:50], 1)  # ties in the scores
    p = p / p.sum(axis=1, keepdims=True)
    out = M.classifier_metrics(y, p)
    aps = [average_precision_score(y == c, p[:, c]) for c in range(3)]
    assert out["macro_ap"] == pytest.approx(np.mean(aps))
    assert out["log_loss"] == pytest.approx(log_loss(y, p, labels=[0, 1, 2]))
    pred = p.argmax(axis=1)
    prec = precision_score(y, pred, average=None, labels=[0, 1, 2], zero_division=0)
    rec = recall_score(y, pred, average=None, labels=[0, 1, 2], zero_division=0)
    for c in range(3):
        assert out["per_class"][str(c)]["precision"] == pytest.approx(prec[c])
        assert out["per_class"][str(c)]["recall"] == pytest.approx(rec[c])
        assert out["per_class"][str(c)]["average_precision"] == pytest.approx(aps[c])


def test_trial_variance():
    assert M.trial_sr_variance([0.1]) is None
    assert M.trial_sr_variance([0.1, 0.3, float("nan")]) == pytest.approx(0.02)


def test_average_precision_is_scikit_learns_to_the_bit():
    """binary_average_precision replaces sklearn's average_precision_score at run time (a job no longer
    imports scikit-learn): the same number, bit for bit, with ties, constant scores and rare positives."""
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(7)
    cases = 0
    for n in (1, 2, 7, 60, 2000):
        for _ in range(60):
            y = rng.random(n) < rng.uniform(0.02, 0.9)
            if not y.any():
                continue
            tied = rng.integers(0, 4, n) / 3.0  # few distinct scores: many ties
            for score in (rng.random(n), tied, np.full(n, 0.5)):
                assert M.binary_average_precision(y, score) == average_precision_score(y, score)
                cases += 1
    assert cases > 500
    # A hand-computed case: scores 0.9 (pos), 0.8 (neg), 0.7 (pos): AP = 1 * 1/2 + 2/3 * 1/2.
    assert M.binary_average_precision(np.array([1, 0, 1]), np.array([0.9, 0.8, 0.7])) == pytest.approx(
        0.5 + 1 / 3
    )
    assert math.isnan(M.binary_average_precision(np.array([0, 0]), np.array([0.1, 0.2])))
