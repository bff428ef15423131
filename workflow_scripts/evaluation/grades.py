"""Grades: an absolute table on the after-cost Sharpe (seed 004) and a percentile scale across a run (seed
003).

Decision: the absolute table reads the *per-trade* after-cost Sharpe (mean / std of net trade returns, not
annualised). Seed 004's cut-offs (S >= 0.30 ... D >= 0.05) are per-trade sized: an annualised Sharpe of 0.30
is noise for hourly trading, while a per-trade Sharpe of 0.30 over a few hundred trades is a strong result.
`basis: annualised` switches to the annualised per-bar Sharpe; the table then needs other numbers.

Config (config/grades/default.yaml):
    basis: per_trade | annualised
    table: [[S, 0.30], [A, 0.20], [B, 0.15], [C, 0.10], [D, 0.05]]  # descending; below the last -> fail_grade
    fail_grade: F
    percentile_scale: [[S, 95], [A+, 90], [A, 80], [A-, 70], [B+, 60], [B, 50], [B-, 40], [C, 30], [D, 20]]
    min_trades: 30  # after-cost trades a grade needs; fewer -> INSUFFICIENT ('N'), whatever the Sharpe

Evidence before grades (issue 14 item 7): a model with fewer than `min_trades` after-cost trades gets the
explicit "insufficient evidence" grade INSUFFICIENT = 'N' (one letter, so it fits the VIN's GRADE segment),
never S or any other table grade; in the percentile method such models are also left out of the population
the percentiles are taken over. A cfg without `min_trades` (a caller's own table) grades without the rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

BASES = {"per_trade": "sharpe_per_trade", "annualised": "sharpe"}
INSUFFICIENT = "N"  # "insufficient evidence": fewer after-cost trades than grades.min_trades


def has_evidence(metrics_after_costs: Mapping[str, Any], cfg: Mapping[str, Any]) -> bool:
    """True when the model made at least cfg['min_trades'] after-cost trades (always, without the key)."""
    need = cfg.get("min_trades")
    if need is None:
        return True
    n = metrics_after_costs.get("n_trades")
    return n is not None and int(n) >= int(need)


def _table(rows: Sequence[Sequence[Any]]) -> list[tuple[str, float]]:
    rows = [(str(g), float(v)) for g, v in rows]
    cut = [v for _, v in rows]
    if any(a <= b for a, b in pairwise(cut)):
        raise ValueError(f"grade table must be strictly descending, got {rows}")
    return rows


def grade_absolute(value: float | None, table: Sequence[Sequence[Any]], fail_grade: str) -> str:
    """First grade whose cut-off value reaches (>=); fail_grade below the last cut-off or for a missing
    value."""
    if value is None or not math.isfinite(value):
        return fail_grade
    for grade, cut in _table(table):
        if value >= cut:
            return grade
    return fail_grade


def grade_metric(metrics_after_costs: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict:
    """Grade one model from its after-cost metrics with the configured basis and table (config/grades)."""
    basis = cfg["basis"]
    if basis not in BASES:
        raise ValueError(f"grades.basis must be one of {list(BASES)}, got {basis!r}")
    value = metrics_after_costs.get(BASES[basis])
    out = {"grade": grade_absolute(value, cfg["table"], cfg["fail_grade"]), "basis": basis, "value": value}
    if "min_trades" in cfg:
        out["n_trades"], out["min_trades"] = metrics_after_costs.get("n_trades"), cfg["min_trades"]
        if not has_evidence(metrics_after_costs, cfg):
            out["grade"] = INSUFFICIENT
    return out


def percentile_ranks(values: Sequence[float | None]) -> np.ndarray:
    """Mid-rank percentile in (0, 100): 100 * (#below + 0.5 * #equal) / n (ties share one rank, a lone model
    sits at 50); missing values rank 0."""
    v = np.array([x if x is not None and math.isfinite(x) else -np.inf for x in values], dtype=float)
    n = len(v)
    if n == 0:
        return np.zeros(0)
    s = np.sort(v)
    below = np.searchsorted(s, v, side="left")
    equal = np.searchsorted(s, v, side="right") - below
    pct = 100.0 * (below + 0.5 * equal) / n
    return np.where(np.isfinite(v), pct, 0.0)


def grade_percentile(
    values: Sequence[float | None], scale: Sequence[Sequence[Any]], fail_grade: str
) -> list[str]:
    """Seed 003's scale over one run's models: S >= 95th percentile, A+ >= 90, ..., D >= 20, else F."""
    table = _table(scale)
    out = []
    for p, x in zip(percentile_ranks(values), values):
        if x is None or not math.isfinite(x):
            out.append(fail_grade)
            continue
        out.append(next((g for g, cut in table if p >= cut), fail_grade))
    return out


def grade_run(after_cost_metrics: Sequence[Mapping[str, Any]], cfg: Mapping[str, Any]) -> list[dict]:
    """Grades for all models of one run with the configured method (absolute table or percentile scale)."""
    method = cfg["method"]
    if method == "absolute":
        return [grade_metric(m, cfg) | {"method": "absolute"} for m in after_cost_metrics]
    if method != "percentile":
        raise ValueError(f"grades.method must be 'absolute' or 'percentile', got {method!r}")
    basis = cfg["basis"]
    if basis not in BASES:
        raise ValueError(f"grades.basis must be one of {list(BASES)}, got {basis!r}")
    values = [m.get(BASES[basis]) for m in after_cost_metrics]
    # Models without enough trades are graded INSUFFICIENT and left out of the ranked population.
    ok = [has_evidence(m, cfg) for m in after_cost_metrics]
    ranked = [v for v, e in zip(values, ok) if e]
    grades = iter(grade_percentile(ranked, cfg["percentile_scale"], cfg["fail_grade"]))
    pct = iter(percentile_ranks(ranked).tolist())
    out = []
    for m, v, e in zip(after_cost_metrics, values, ok):
        row = {
            "grade": next(grades) if e else INSUFFICIENT,
            "basis": basis,
            "value": v,
            "method": "percentile",
        }
        row["percentile"] = next(pct) if e else None
        if "min_trades" in cfg:
            row["n_trades"], row["min_trades"] = m.get("n_trades"), cfg["min_trades"]
        out.append(row)
    return out
