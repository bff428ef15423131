"""Evaluate one model on one segment: trading rule -> trades -> costs -> metrics, DSR, gate verdict, grade.

Everything returned is plain JSON (dicts, lists, floats, None for undefined values). The rule, the costs
snapshot and the gate profile used are recorded in the result. docs/EVALUATION.md has the definitions.

Inputs per evaluated row (one row per event bar of the model's target, sorted by bar position):
    pos             bar position in the symbol's ingested bar table (int)
    side            'high' / 'low' (scalar or per row)
    proba           n x 3 class probabilities (neither, breakout, reversion)
    label           target code (0 neither, 1 breakout, 2 reversion, -2 ambiguous, -3 unknown)
    barrier_logret  b_t = theta * sigma_t * sqrt(H) (log distance of both barriers, docs/TARGETS.md)
    sigma           sigma_t (per-bar log-return std known at t) for the slippage model; optional; from the
                    targets table: barrier_logret__th{theta} / (theta * sqrt(H))
    exit_pos, exit_logret  realised exit bar and log(exit price / close_t) from the targets stage; optional
plus `close` (the full close series of the bar table), `horizon` H in bars and the segment [lo, hi) in bar
positions. Rows outside the segment (pos < lo or pos + H >= hi) are dropped, so no trade outlives it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workflow_scripts.artifacts import atomic_path
from workflow_scripts.evaluation import metrics as M
from workflow_scripts.evaluation.costs import SymbolCosts, costs_from_snapshot, snapshot_of
from workflow_scripts.evaluation.gates import judge
from workflow_scripts.evaluation.grades import grade_metric
from workflow_scripts.evaluation.trading_rule import (
    TradingRule,
    apply_costs,
    bar_returns,
    build_trades,
    trades_table,
)
from workflow_scripts.targets.grammar import parse_target_id


def _costs(costs: SymbolCosts | Mapping[str, Any]) -> tuple[SymbolCosts, dict]:
    if isinstance(costs, SymbolCosts):
        return costs, snapshot_of(costs)
    return costs_from_snapshot(costs), dict(costs)


def _rule(rule: TradingRule | Mapping[str, Any] | None) -> TradingRule:
    return rule if isinstance(rule, TradingRule) else TradingRule.from_mapping(rule)


def _segment_rows(pos: np.ndarray, horizon: int, segment: tuple[int, int]) -> np.ndarray:
    lo, hi = segment
    return (pos >= lo) & (pos + horizon < hi)


def _take(x: Any, mask: np.ndarray) -> Any:
    if x is None:
        return None
    arr = np.asarray(x)
    return arr if arr.ndim == 0 else arr[mask]


def rows_from_targets(table: Any, target_id: str, horizon: int) -> dict:
    """Event rows of one target from the targets table (docs/TARGETS.md) as evaluate_model's row inputs.

    Returns {pos, side, label, barrier_logret, exit_pos, exit_logret, sigma} for every row whose code is not
    -1 (no event), in bar order; align the model's probabilities on `pos`.
    """

    target = parse_target_id(target_id)
    tag = f"th{target['theta']!r}"
    codes = table[target_id].to_numpy()
    pos = np.flatnonzero(codes != -1).astype(np.int64)
    barrier = table[f"barrier_logret__{tag}"].to_numpy(dtype=float)[pos]
    return {
        "pos": pos,
        "side": target["side"],
        "label": codes[pos].astype(np.int64),
        "barrier_logret": barrier,
        "exit_pos": table[f"exit_pos__{tag}"].to_numpy()[pos],
        "exit_logret": table[f"exit_logret__{tag}"].to_numpy(dtype=float)[pos],
        "sigma": barrier / (target["theta"] * math.sqrt(horizon)),
    }


def sharpe_tests(
    trade_returns: np.ndarray, n_trials: int = 1, trial_sharpes: Sequence[float] | None = None
) -> dict:
    """PSR and DSR on the per-trade series (Sharpe per trade, n_obs = number of trades).

    sr_variance: sample variance of `trial_sharpes` (each trial's per-trade Sharpe on the same segment) when
    at least two are given; otherwise the variance of the Sharpe estimator under no skill, 1 / (n - 1)
    adjusted for skew and kurtosis (recorded as sr_variance_source = "null_estimator").
    """
    t = np.asarray(trade_returns, dtype=float)
    sr = M.sharpe_ratio(t)
    skew, kurt = M.moments(t)
    n = len(t)
    var = M.trial_sr_variance(trial_sharpes)
    source = "trials"
    if var is None:
        var, source = M.null_sr_variance(n, skew, kurt, 0.0), "null_estimator"
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    out = {
        "basis": "per_trade",
        "sr": M._finite(sr),
        "n_obs": n,
        "skew": skew,
        "kurtosis": kurt,
        "psr": M._finite(M.probabilistic_sharpe_ratio(sr, n, skew, kurt, 0.0)),
        "sr_variance_source": source,
    }
    if math.isfinite(sr) and var is not None and math.isfinite(var):
        out |= M.deflated_sharpe_ratio(sr, n, n_trials, var, skew, kurt)
    else:
        out |= {
            "dsr": None,
            "sr0": None,
            "n_trials": int(n_trials),
            "sr_variance": M._finite(var or float("nan")),
        }
    return out


def evaluate_model(
    *,
    pos: np.ndarray,
    side: np.ndarray | str,
    proba: np.ndarray,
    label: np.ndarray,
    barrier_logret: np.ndarray,
    horizon: int,
    close: np.ndarray,
    segment: tuple[int, int],
    costs: SymbolCosts | Mapping[str, Any],
    rule: TradingRule | Mapping[str, Any] | None = None,
    sigma: np.ndarray | None = None,
    exit_pos: np.ndarray | None = None,
    exit_logret: np.ndarray | None = None,
    timestamps: np.ndarray | None = None,
    n_trials: int = 1,
    trial_sharpes: Sequence[float] | None = None,
    gate_profile: Mapping[str, Any] | None = None,
    grades: Mapping[str, Any] | None = None,
    bars_per_year: int = M.BARS_PER_YEAR,
    include_trades: bool = False,
    include_curves: bool = False,
) -> dict:
    """One model on one segment -> result dict (see docs/EVALUATION.md for every key)."""
    rule = _rule(rule)
    cost_obj, snapshot = _costs(costs)
    pos = np.asarray(pos, dtype=np.int64)
    lo, hi = int(segment[0]), int(segment[1])
    keep = _segment_rows(pos, horizon, (lo, hi))
    rows = {
        "pos": pos[keep],
        "side": _take(side, keep),
        "proba": np.asarray(proba, dtype=float)[keep],
        "label": np.asarray(label)[keep],
        "barrier_logret": np.asarray(barrier_logret, dtype=float)[keep],
    }
    trades = build_trades(
        **rows,
        horizon=horizon,
        close=close,
        rule=rule,
        exit_pos=_take(exit_pos, keep),
        exit_logret=_take(exit_logret, keep),
    )
    trades = apply_costs(trades, cost_obj, _take(sigma, keep))
    gross_bars = bar_returns(trades, close, lo, hi, rule.position_size, net=False)
    net_bars = bar_returns(trades, close, lo, hi, rule.position_size, net=True)
    held = int(np.sum(trades["exit_pos"] - trades["entry_pos"]))
    before = M.trading_metrics(gross_bars, trades["gross_ret"], held, rule.position_size, bars_per_year)
    after = M.trading_metrics(net_bars, trades["net_ret"], held, rule.position_size, bars_per_year)
    tests = sharpe_tests(trades["net_ret"], n_trials, trial_sharpes)
    after["psr"], after["dsr"] = tests["psr"], tests["dsr"]
    before["psr"] = sharpe_tests(trades["gross_ret"])["psr"]
    known = np.isin(rows["label"], (0, 1, 2))
    result = {
        "segment": {"lo": lo, "hi": hi, "n_bars": hi - lo, "horizon": int(horizon)},
        "rule": rule.to_dict(),
        "costs": snapshot,
        "counts": {
            "n_rows": int(trades["n_rows"]),
            "n_unsettled": int(trades["n_unsettled"]),
            "n_signals": int(trades["n_signals"]),
            "n_trades": len(trades["row"]),
            "n_ambiguous_trades": int(np.sum(trades["ambiguous"])),
            "n_long": int(np.sum(trades["direction"] > 0)),
            "n_short": int(np.sum(trades["direction"] < 0)),
        },
        "before_costs": before,
        "after_costs": after,
        "sharpe_tests": tests,
        "classifier": M.classifier_metrics(rows["label"][known], rows["proba"][known]),
        "bars_per_year": bars_per_year,
    }
    if gate_profile is not None:
        result["gate"] = judge(after, gate_profile)
    if grades is not None:
        result["grade"] = grade_metric(after, grades)
    if include_trades:
        ts = None if timestamps is None else np.asarray(timestamps)
        result["trades"] = trades_table(trades, ts)
    if include_curves:
        result["curves"] = {
            "bar_pos": list(range(lo - 1, hi)),  # equity starts at 1 before the first bar
            "equity_gross": M.equity_curve(gross_bars).tolist(),
            "equity_net": M.equity_curve(net_bars).tolist(),
        }
    return result


def select_threshold(
    grid: Sequence[float],
    *,
    min_trades: int = 10,
    objective: str = "sharpe_per_trade",
    fallback: float = 0.5,
    **inputs: Any,
) -> dict:
    """Pick the rule threshold on the validation segment: the grid value with the best after-cost `objective`
    among those with at least `min_trades` trades (ties -> the higher, more selective threshold). `inputs` are
    evaluate_model's keyword arguments except `rule`'s threshold (`rule` may carry the other rule keys).
    Returns {threshold, chosen_by, table}."""
    base = _rule(inputs.pop("rule", None))
    table = []
    for th in sorted({float(g) for g in grid}):
        rule = TradingRule(th, base.allow_short, base.allow_overlap, base.position_size)
        res = evaluate_model(**inputs, rule=rule)
        value = res["after_costs"].get(objective)
        table.append({"threshold": th, "n_trades": res["after_costs"]["n_trades"], objective: value})
    ok = [r for r in table if r["n_trades"] >= min_trades and r[objective] is not None]
    if not ok:
        return {
            "threshold": float(fallback),
            "chosen_by": "fallback (no grid value had enough trades)",
            "objective": objective,
            "table": table,
        }
    best = max(ok, key=lambda r: (r[objective], r["threshold"]))
    return {
        "threshold": best["threshold"],
        "chosen_by": f"max after-cost {objective} on validation",
        "objective": objective,
        "table": table,
    }


def plot_equity(
    path: str, result: Mapping[str, Any], title: str = "", timestamps: np.ndarray | None = None
) -> None:
    """PNG of the after-cost equity (gross dashed) with a drawdown panel; needs include_curves=True
    results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = result["curves"]
    net = np.asarray(curves["equity_net"])
    gross = np.asarray(curves["equity_gross"])
    x = np.asarray(curves["bar_pos"])
    if timestamps is not None:
        ts = np.asarray(timestamps)
        x = ts[np.clip(x, 0, len(ts) - 1)]
    dd = M.drawdown(net)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax1.plot(x, net, color="tab:blue", lw=1.2, label="after costs")
    ax1.plot(x, gross, color="tab:gray", lw=0.8, ls="--", label="before costs")
    ax1.axhline(1.0, color="black", lw=0.5)
    ax1.set_ylabel("equity (start = 1)")
    a = result.get("after_costs", {})
    gate = result.get("gate")
    sub = (
        f"net {a.get('total_return', float('nan')):+.1%}, trades {a.get('n_trades')}, "
        f"Sharpe/trade {_fmt(a.get('sharpe_per_trade'))}, DSR {_fmt(a.get('dsr'))}, "
        f"grade {result.get('grade', {}).get('grade')}"
    )
    if gate is not None:
        sub += f", {gate['profile']}: {'PASS' if gate['passed'] else 'FAIL'}"
    ax1.set_title(f"{title}\n{sub}" if title else sub, fontsize=9)
    ax1.legend(loc="upper left", fontsize=8)
    ax2.fill_between(x, dd, 0.0, color="tab:red", alpha=0.4, step="post")
    ax2.set_ylabel("drawdown")
    ax2.set_xlabel("time (UTC)" if timestamps is not None else "bar position")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def plot_no_model(path: str, title: str, reason: str) -> None:
    """The PNG of a side without a trained variant: its title and why, so the report shows every side."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 2.5))
    ax.axis("off")
    ax.text(0.01, 0.9, f"{title}: no model", fontsize=11, weight="bold", va="top")
    ax.text(0.01, 0.65, textwrap.fill(reason, 140), fontsize=8, va="top")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3f}"
