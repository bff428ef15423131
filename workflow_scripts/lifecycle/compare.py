"""Champion / challenger on the same bars and the same money measure (docs/LIFECYCLE.md), on plain arrays.

The measure: per-bar after-cost simple returns of a model's trading rule (flat bars return 0), compared by the
annualised Sharpe ratio of those returns. Two candidates are compared on the bars both have evidence for (the
validation bars common to both at first registration; paper bars when both have enough of them): a paired
test on the per-bar differences d_t = r_challenger,t - r_champion,t, H0: E[d] <= 0 against H1: E[d] > 0, with
a Newey-West (HAC, Bartlett kernel) standard error of the mean of d, so the autocorrelation of overlapping
trades does not shrink the error. The default lag is floor(4 (n / 100)^(2/9)) (Newey and West 1994's rule of
thumb). The p-value is one-sided from the normal distribution (the statistic is asymptotically normal).

A challenger replaces the champion only when the common evidence reaches the minima (bars, challenger's
trades) and the p-value is below alpha. Nothing here reads a test-segment metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

MEASURE = "annualised Sharpe of per-bar after-cost returns; paired HAC (Newey-West, Bartlett) t-test"


@dataclass
class Evidence:
    """Per-bar after-cost returns of one model's trading rule on some bars.

    timestamps: int64 bar open times (any unit, the same for every candidate: the workflow uses epoch
    seconds); returns: per-bar simple returns; trades: (n, 2) int64 entry and exit times of its trades;
    source: "validation" or "paper"; usable: False when the returns are not out-of-sample for the model (say a
    stacker fitted on the very bars), with `note` saying why."""

    vin: str
    timestamps: np.ndarray
    returns: np.ndarray
    trades: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    source: str = "validation"
    bars_per_year: float = 8760.0
    usable: bool = True
    note: str | None = None

    def __post_init__(self):
        self.timestamps = np.asarray(self.timestamps, dtype=np.int64)
        self.returns = np.asarray(self.returns, dtype=float)
        self.trades = np.asarray(self.trades, dtype=np.int64).reshape(-1, 2)
        if self.timestamps.shape != self.returns.shape:
            raise ValueError(f"{self.vin}: {len(self.timestamps)} timestamps but {len(self.returns)} returns")
        if len(self.timestamps) > 1 and not np.all(np.diff(self.timestamps) > 0):
            raise ValueError(f"{self.vin}: timestamps must be strictly increasing")

    def on(self, timestamps: np.ndarray) -> Evidence:
        """This evidence restricted to `timestamps` (a subset of its own); trades kept when they lie wholly
        inside [first, last] of those bars."""
        keep = np.isin(self.timestamps, timestamps)
        ts = self.timestamps[keep]
        inside = (
            (self.trades[:, 0] >= ts[0]) & (self.trades[:, 1] <= ts[-1])
            if len(ts)
            else np.zeros(len(self.trades), dtype=bool)
        )
        return Evidence(
            self.vin,
            ts,
            self.returns[keep],
            self.trades[inside],
            self.source,
            self.bars_per_year,
            self.usable,
            self.note,
        )


def default_lags(n: int) -> int:
    """floor(4 (n / 100)^(2/9)): the usual automatic Newey-West lag."""
    return int(math.floor(4.0 * (max(n, 0) / 100.0) ** (2.0 / 9.0)))


def newey_west_variance(x: np.ndarray, lags: int | None = None) -> float:
    """HAC long-run variance of x: gamma_0 + 2 sum_{j=1..L} (1 - j / (L + 1)) gamma_j, gamma_j =
    (1/n) sum_t (x_t - mean)(x_{t-j} - mean) (Bartlett kernel, no small-sample correction)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n == 0:
        return float("nan")
    lags = default_lags(n) if lags is None else int(lags)
    e = x - x.mean()
    out = float(e @ e) / n
    for j in range(1, min(lags, n - 1) + 1):
        out += 2.0 * (1.0 - j / (lags + 1.0)) * float(e[j:] @ e[:-j]) / n
    return out


def newey_west_se(x: np.ndarray, lags: int | None = None) -> float:
    """Newey-West standard error of the mean of x: sqrt(long-run variance / n)."""
    n = len(x)
    v = newey_west_variance(x, lags)
    return math.sqrt(v / n) if n and v > 0 else float("nan")


def paired_hac_test(challenger: np.ndarray, champion: np.ndarray, lags: int | None = None) -> dict:
    """One-sided paired test of mean(challenger - champion) > 0 with a Newey-West standard error.
    Returns {n, lags, mean_diff, se, statistic, p_value} (p_value None when the difference has no variance:
    identical series)."""
    a, b = np.asarray(challenger, dtype=float), np.asarray(champion, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired series differ in length: {len(a)} vs {len(b)}")
    d = a - b
    n = len(d)
    lags = default_lags(n) if lags is None else int(lags)
    mean = float(d.mean()) if n else float("nan")
    se = newey_west_se(d, lags)
    if not (n > 1 and math.isfinite(se) and se > 0):
        return {"n": n, "lags": lags, "mean_diff": mean, "se": None, "statistic": None, "p_value": None}
    t = mean / se
    return {
        "n": n,
        "lags": lags,
        "mean_diff": mean,
        "se": se,
        "statistic": t,
        "p_value": 0.5 * math.erfc(t / math.sqrt(2.0)),  # P(Z > t)
    }


def annualised_sharpe(returns: np.ndarray, bars_per_year: float) -> float | None:
    """mean / std (ddof 1) * sqrt(bars_per_year) of per-bar returns; None when undefined."""
    r = np.asarray(returns, dtype=float)
    if len(r) < 2:
        return None
    sd = float(r.std(ddof=1))
    if not (sd > 0 and math.isfinite(sd)):
        return None
    return float(r.mean()) / sd * math.sqrt(float(bars_per_year))


def _iso(ts: int) -> str:
    return np.datetime64(int(ts), "s").astype(str) + "Z"


def bars_record(timestamps: np.ndarray) -> dict:
    """{count, first, last} of compared bars (ISO UTC, timestamps in epoch seconds)."""
    ts = np.asarray(timestamps, dtype=np.int64)
    if not len(ts):
        return {"count": 0, "first": None, "last": None}
    return {"count": int(len(ts)), "first": _iso(ts[0]), "last": _iso(ts[-1])}


def evidence_summary(ev: Evidence) -> dict:
    """What the index keeps of a model's evidence: bars, trades, annualised Sharpe of its per-bar returns."""
    return {
        "source": ev.source,
        "bars": bars_record(ev.timestamps),
        "trades": int(len(ev.trades)),
        "sharpe": annualised_sharpe(ev.returns, ev.bars_per_year),
        "usable": ev.usable,
    }


def _common(a: Evidence, b: Evidence) -> tuple[Evidence, Evidence]:
    ts = np.intersect1d(a.timestamps, b.timestamps)
    return a.on(ts), b.on(ts)


def choose_evidence(
    validation: tuple[Evidence | None, Evidence | None],
    paper: tuple[Evidence | None, Evidence | None] | None,
    minima: Mapping,
) -> tuple[Evidence | None, Evidence | None]:
    """The pair to compare: paper evidence when both candidates have paper bars in common reaching
    minima["min_bars"], otherwise the validation evidence (the hook for the paper ledger: pass None until it
    exists)."""
    if paper is not None and all(p is not None for p in paper):
        a, b = _common(*paper)
        if len(a.timestamps) >= int(minima["min_bars"]):
            return paper
    return validation


def judge_first(candidate: Evidence | None, spec: Mapping) -> dict:
    """May `candidate` become the first champion of an empty slot? It needs usable evidence reaching the
    minima (bars, trades). Returns {"beats": bool, "reason": {...}}."""
    minima = spec
    reason: dict = {"measure": MEASURE, "comparison": "first champion (no champion to compare with)"}
    if candidate is None:
        return {"beats": False, "reason": reason | {"why": "no validation evidence"}}
    reason |= {
        "source": candidate.source,
        "bars": bars_record(candidate.timestamps),
        "trades": {"candidate": int(len(candidate.trades))},
        "sharpe": {"candidate": annualised_sharpe(candidate.returns, candidate.bars_per_year)},
    }
    why = _short_of_minima(candidate, None, minima)
    if why:
        return {"beats": False, "reason": reason | {"why": why}}
    return {"beats": True, "reason": reason | {"why": "first champion with enough evidence"}}


def _short_of_minima(challenger: Evidence, champion: Evidence | None, minima: Mapping) -> str | None:
    if not challenger.usable:
        return f"challenger evidence not usable: {challenger.note}"
    n = len(challenger.timestamps)
    if n < int(minima["min_bars"]):
        return f"{n} bars compared < min_bars {int(minima['min_bars'])}"
    if len(challenger.trades) < int(minima["min_trades"]):
        return f"{len(challenger.trades)} challenger trades < min_trades {int(minima['min_trades'])}"
    return None


def compare(challenger: Evidence | None, champion: Evidence | None, spec: Mapping) -> dict:
    """Does `challenger` replace `champion`? spec: alpha, min_bars, min_trades (config registry.compare).

    Returns {"beats": bool, "reason": {measure, source, bars {count, first, last}, trades, sharpe
    {challenger, champion}, test {n, lags, mean_diff, se, statistic, p_value}, alpha, why}}. A champion with
    no usable evidence is replaced by a challenger whose own evidence reaches the minima."""
    alpha = float(spec["alpha"])
    reason: dict = {"measure": MEASURE, "alpha": alpha}
    if challenger is None:
        return {"beats": False, "reason": reason | {"why": "challenger has no evidence"}}
    if champion is None or not champion.usable:
        first = judge_first(challenger, spec)
        why = "champion has no usable evidence" + (f" ({champion.note})" if champion is not None else "")
        ok = first["beats"]
        detail = first["reason"] | {"measure": MEASURE, "alpha": alpha}
        return {"beats": ok, "reason": detail | {"why": f"{why}; " + detail["why"]}}
    if challenger.source != champion.source:
        raise ValueError(f"compare {challenger.source} evidence with {champion.source} evidence")
    a, b = _common(challenger, champion)
    reason |= {
        "source": a.source,
        "bars": bars_record(a.timestamps),
        "trades": {"challenger": int(len(a.trades)), "champion": int(len(b.trades))},
        "sharpe": {
            "challenger": annualised_sharpe(a.returns, a.bars_per_year),
            "champion": annualised_sharpe(b.returns, b.bars_per_year),
        },
    }
    why = _short_of_minima(a, b, spec)
    if why:
        return {"beats": False, "reason": reason | {"test": None, "why": "insufficient evidence: " + why}}
    test = paired_hac_test(a.returns, b.returns)
    reason["test"] = test
    p = test["p_value"]
    beats = p is not None and p < alpha
    if beats:
        why = f"significantly better: p {p:.4g} < alpha {alpha}"
    elif p is None:
        why = "identical per-bar returns on the compared bars"
    else:
        why = f"not significantly better: p {p:.4g} >= alpha {alpha}"
    return {"beats": beats, "reason": reason | {"why": why}}


def demotion(paper: Evidence | None, spec: Mapping) -> dict:
    """Should a champion be demoted on its paper record? spec (config registry.demotion): min_bars,
    min_trades (evidence needed before judging), sharpe_floor (annualised Sharpe of its paper per-bar returns
    below which it is demoted). Returns {"demote": bool, "reason": {...}}."""
    reason: dict = {"measure": "annualised Sharpe of per-bar after-cost paper returns", "source": "paper"}
    if paper is None:
        return {"demote": False, "reason": reason | {"why": "no paper record"}}
    sharpe = annualised_sharpe(paper.returns, paper.bars_per_year)
    floor = float(spec["sharpe_floor"])
    reason |= {
        "bars": bars_record(paper.timestamps),
        "trades": int(len(paper.trades)),
        "sharpe": sharpe,
        "floor": floor,
        "minimum": {"bars": int(spec["min_bars"]), "trades": int(spec["min_trades"])},
    }
    n_bars, n_trades = len(paper.timestamps), len(paper.trades)
    if n_bars < int(spec["min_bars"]) or n_trades < int(spec["min_trades"]):
        why = (
            f"not enough paper evidence yet: {n_bars} bars, {n_trades} trades "
            f"(min_bars {int(spec['min_bars'])}, min_trades {int(spec['min_trades'])})"
        )
        return {"demote": False, "reason": reason | {"why": why}}
    # a flat record (no variance: say no trade moved the equity) has no Sharpe and counts as below the floor
    below = sharpe is None or sharpe < floor
    shown = "undefined (no variance)" if sharpe is None else f"{sharpe:.4g}"
    why = f"paper Sharpe {shown} {'<' if below else '>='} floor {floor:g} on {n_bars} bars, {n_trades} trades"
    return {"demote": below, "reason": reason | {"why": why}}


def evidence_from_document(vin: str, doc: Mapping) -> Evidence:
    """Evidence from a validation evidence document (evaluation/evidence.py EVIDENCE_FILE) or a paper ledger
    document of the same shape (timestamps_s, returns, trades, bars_per_year; `segment` names the source)."""
    in_sample = bool(doc.get("in_sample_fit"))
    return Evidence(
        vin,
        np.asarray(doc["timestamps_s"], dtype=np.int64),
        np.asarray(doc["returns"], dtype=float),
        np.asarray(doc.get("trades") or np.zeros((0, 2)), dtype=np.int64),
        source=str(doc.get("segment", "validation")),
        bars_per_year=float(doc.get("bars_per_year", 8760.0)),
        usable=not in_sample,
        note="the model was fitted on these bars (in-sample)" if in_sample else None,
    )
