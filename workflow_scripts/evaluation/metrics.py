"""Trading and classifier metrics, the probabilistic and the deflated Sharpe ratio. Pure and deterministic.

Conventions (docs/EVALUATION.md):
- Per-bar series: simple returns of the strategy's equity on every bar of the evaluated segment, flat bars
  included as 0. Annualised Sharpe / Sortino = per-bar value * sqrt(BARS_PER_YEAR) with
  BARS_PER_YEAR = 24 * 365 = 8760 (hourly bars, 24/7 market).
- Per-trade series: the net (or gross) simple return of each trade. The per-trade Sharpe is NOT annualised;
  it is what grades and the DSR use.
- Sharpe uses the sample standard deviation (ddof = 1) and a zero risk-free rate (crypto, cash not earning).
- Kurtosis is the non-excess (Pearson) kurtosis, 3 for a normal distribution, as in Bailey & Lopez de Prado.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from statistics import NormalDist

import numpy as np

BARS_PER_YEAR = 24 * 365
EULER_GAMMA = 0.5772156649015329
_STD_NORMAL = NormalDist()  # stdlib: no scipy needed at run time


def _norm_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


# ---- Sharpe family -----------------------------------------------------------------------------------------
def sharpe_ratio(returns: np.ndarray, periods_per_year: float | None = None) -> float:
    """mean / std (ddof=1), times sqrt(periods_per_year) when given. NaN for < 2 values or zero std."""
    r = np.asarray(returns, dtype=float)
    if len(r) < 2:
        return float("nan")
    sd = r.std(ddof=1)
    if not sd > 0:
        return float("nan")
    sr = r.mean() / sd
    return float(sr * math.sqrt(periods_per_year)) if periods_per_year else float(sr)


def sortino_ratio(returns: np.ndarray, periods_per_year: float | None = None) -> float:
    """mean / downside deviation, downside deviation = sqrt(mean(min(r, 0)^2)) over all periods (target 0)."""
    r = np.asarray(returns, dtype=float)
    if len(r) < 2:
        return float("nan")
    dd = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if not dd > 0:
        return float("nan")
    sr = r.mean() / dd
    return float(sr * math.sqrt(periods_per_year)) if periods_per_year else float(sr)


def moments(returns: np.ndarray) -> tuple[float, float]:
    """(skewness, non-excess kurtosis) of a sample; (0, 3) when undefined (fewer than 3 values or zero
    spread)."""
    r = np.asarray(returns, dtype=float)
    if len(r) < 3 or not r.std() > 0:
        return 0.0, 3.0
    # population (biased) moments, as in the papers; equal to scipy.stats.skew / kurtosis(fisher=False).
    z = (r - r.mean()) / r.std()
    return float(np.mean(z**3)), float(np.mean(z**4))


def probabilistic_sharpe_ratio(
    sr: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0, sr_benchmark: float = 0.0
) -> float:
    """PSR (Bailey & Lopez de Prado 2012): P[true SR > sr_benchmark] given the estimate `sr` from n_obs
    returns.

    PSR = Phi((sr - sr*) sqrt(n - 1) / sqrt(1 - skew sr + (kurtosis - 1) / 4 sr^2)); sr, sr* per observation
    (not annualised), kurtosis non-excess.
    """
    if n_obs < 2 or not math.isfinite(sr):
        return float("nan")
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if not var > 0:
        return float("nan")
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var)
    return _norm_cdf(z)


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """E[max SR] over n_trials independent trials with true SR 0 (Bailey & Lopez de Prado 2014, eq. via the
    Euler-Mascheroni constant g): sqrt(V) ((1 - g) Z^-1(1 - 1/N) + g Z^-1(1 - 1/(N e))). 0 for a single
    trial."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if n_trials == 1:
        return 0.0
    if not sr_variance >= 0:
        raise ValueError(f"sr_variance must be >= 0, got {sr_variance}")
    z1 = _STD_NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _STD_NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2))


def null_sr_variance(n_obs: int, skew: float = 0.0, kurtosis: float = 3.0, sr: float = 0.0) -> float:
    """Variance of the Sharpe estimator itself, (1 - skew sr + (kurt - 1)/4 sr^2) / (n - 1): the dispersion
    trial Sharpes would have if no trial had skill. Used when the trials' own Sharpes are not available."""
    if n_obs < 2:
        return float("nan")
    return float((1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr) / (n_obs - 1))


def deflated_sharpe_ratio(
    sr: float,
    n_obs: int,
    n_trials: int,
    sr_variance: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> dict:
    """DSR (Bailey & Lopez de Prado 2014) = PSR against SR0 = E[max SR] of n_trials skill-less trials.

    All Sharpe ratios per observation (same units as `sr`); `sr_variance` is the variance of the trials'
    Sharpe estimates. Returns {dsr, sr0, n_trials, sr_variance}.
    """
    sr0 = expected_max_sharpe(n_trials, sr_variance) if math.isfinite(sr_variance) else float("nan")
    dsr = probabilistic_sharpe_ratio(sr, n_obs, skew, kurtosis, sr0) if math.isfinite(sr0) else float("nan")
    return {
        "dsr": _finite(dsr),
        "sr0": _finite(sr0),
        "n_trials": int(n_trials),
        "sr_variance": _finite(sr_variance),
    }


# ---- equity ------------------------------------------------------------------------------------------------
def equity_curve(bar_returns: np.ndarray) -> np.ndarray:
    """Equity starting at 1 before the first bar: length n + 1."""
    return np.concatenate([[1.0], np.cumprod(1.0 + np.asarray(bar_returns, dtype=float))])


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Drawdown from the running peak as a non-positive fraction (-0.2 = 20 % below the peak)."""
    equity = np.asarray(equity, dtype=float)
    return equity / np.maximum.accumulate(equity) - 1.0


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough loss as a positive fraction (0.25 = 25 %)."""
    return float(-drawdown(equity).min()) if len(equity) else 0.0


def trading_metrics(
    bar_returns: np.ndarray,
    trade_returns: np.ndarray,
    held_bars: int,
    position_size: float = 1.0,
    bars_per_year: int = BARS_PER_YEAR,
) -> dict:
    """Metrics of one return stream (call once before and once after costs).

    total_return: equity at the end - 1 (compounded per-bar returns); annual_return: (1 + total) ^
    (bars_per_year / n_bars) - 1; sharpe / sortino: per bar, annualised by sqrt(bars_per_year);
    sharpe_per_trade: not annualised; hit_rate: share of trades with return > 0; profit_factor: sum of wins /
    |sum of losses| (None without losses); turnover: traded notional (entry + exit) per year as a multiple of
    equity; exposure: share of bars with an open position.
    """
    r = np.asarray(bar_returns, dtype=float)
    t = np.asarray(trade_returns, dtype=float)
    n_bars = len(r)
    years = n_bars / bars_per_year if n_bars else float("nan")
    eq = equity_curve(r)
    total = float(eq[-1] - 1.0)
    annual = (1.0 + total) ** (1.0 / years) - 1.0 if n_bars and total > -1.0 else float("nan")
    wins, losses = t[t > 0].sum(), t[t < 0].sum()
    skew, kurt = moments(t)
    return {
        "n_bars": n_bars,
        "n_trades": len(t),
        "total_return": total,
        "annual_return": _finite(annual),
        "sharpe": _finite(sharpe_ratio(r, bars_per_year)),
        "sortino": _finite(sortino_ratio(r, bars_per_year)),
        "sharpe_per_trade": _finite(sharpe_ratio(t)),
        "trade_skew": skew,
        "trade_kurtosis": kurt,
        "mean_trade_return": _finite(float(t.mean())) if len(t) else None,
        "max_drawdown": max_drawdown(eq),
        "hit_rate": _finite(float((t > 0).mean())) if len(t) else None,
        "profit_factor": _finite(float(wins / -losses)) if losses < 0 else None,
        "turnover": _finite(2.0 * position_size * len(t) / years) if n_bars else None,
        "exposure": float(held_bars / n_bars) if n_bars else 0.0,
    }


# ---- classifier --------------------------------------------------------------------------------------------
def binary_average_precision(positive: np.ndarray, score: np.ndarray) -> float:
    """Average precision of one class: sum over the distinct score thresholds, highest first, of (recall
    gained) x precision, ties at one threshold taken together. The definition of scikit-learn's
    average_precision_score (tests/evaluation/test_metrics.py checks it against it), in numpy, so a job does
    not import scikit-learn (a second of start-up per job)."""
    positive = np.asarray(positive, dtype=bool)
    score = np.asarray(score, dtype=float)
    order = np.argsort(score, kind="mergesort")[::-1]
    score, positive = score[order], positive[order]
    last_of_threshold = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tps = np.cumsum(positive)[last_of_threshold].astype(float)
    if len(tps) == 0 or tps[-1] == 0:
        return float("nan")
    precision = tps / (last_of_threshold + 1)
    recall = tps / tps[-1]
    return float(-np.sum(np.diff(np.r_[recall[::-1], 0.0]) * precision[::-1]))


def per_class_average_precision(
    y_true: np.ndarray, proba: np.ndarray, classes: Sequence[int] = (0, 1, 2)
) -> dict:
    """One-vs-rest average precision (`binary_average_precision`) of each class present in y_true, keyed by
    str(class)."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(proba, dtype=float)
    return {
        str(c): binary_average_precision(y == c, p[:, i]) for i, c in enumerate(classes) if (y == c).any()
    }


def macro_average_precision(
    y_true: np.ndarray, proba: np.ndarray, classes: Sequence[int] = (0, 1, 2)
) -> float:
    """Macro one-vs-rest average precision over the classes present (NaN if none): the one AP of the
    project."""
    ap = per_class_average_precision(y_true, proba, classes)
    return float(np.mean(list(ap.values()))) if ap else float("nan")


def classifier_metrics(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[int] = (0, 1, 2)) -> dict:
    """Macro one-vs-rest average precision (over classes present), per-class precision / recall of the arg-max
    prediction, multi-class log loss (probabilities clipped to [eps, 1 - eps], float64 eps, as
    scikit-learn)."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(proba, dtype=float)
    out: dict = {"n": len(y), "class_counts": {str(c): int((y == c).sum()) for c in classes}}
    if len(y) == 0:
        return out | {"macro_ap": None, "log_loss": None, "per_class": {}}
    cls = np.asarray(classes)
    ap = per_class_average_precision(y, p, classes)
    pred = cls[p.argmax(axis=1)]
    eps = np.finfo(float).eps  # scikit-learn's clipping, so the numbers agree with its log_loss
    clipped = np.clip(p, eps, 1.0 - eps)
    col = np.searchsorted(cls, y)
    out["macro_ap"] = float(np.mean(list(ap.values()))) if ap else None
    out["log_loss"] = float(-np.mean(np.log(clipped[np.arange(len(y)), col])))
    per = {}
    for c in classes:
        tp = int(np.sum((pred == c) & (y == c)))
        n_pred, n_true = int(np.sum(pred == c)), int(np.sum(y == c))
        per[str(c)] = {
            "precision": tp / n_pred if n_pred else 0.0,
            "recall": tp / n_true if n_true else 0.0,
            "average_precision": ap.get(str(c)),
        }
    out["per_class"] = per
    return out


def trial_sr_variance(trial_sharpes: Iterable[float] | None) -> float | None:
    """Sample variance (ddof=1) of the finite trial Sharpes; None when fewer than two."""
    if trial_sharpes is None:
        return None
    vals = np.asarray([s for s in trial_sharpes if s is not None and math.isfinite(s)], dtype=float)
    return float(vals.var(ddof=1)) if len(vals) >= 2 else None
