"""Evaluations per second on one year of hourly bars (8,760 bars), the shape the evaluate rule sees.

    python benchmarks/evaluation.py [--events 700] [--horizon 10] [--seconds 3]
                                    [--out benchmarks/out/evaluation.json]

Synthetic but realistic: a random-walk close series (0.6 % hourly sigma), ~8 % of bars are events of one side
(about 700 a year, the order of a k = 1.5 swing target), an informative 3-class model, the default cost table
with volatility slippage, the strict gate profile and 24 trials behind the model. Timed: evaluate_model end to
end (trading rule, costs, per-bar equity, trading and classifier metrics, PSR / DSR, gate, grade); the equity
plot is timed separately because it is matplotlib-bound, not ours.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workflow_scripts.artifacts import write_json
from workflow_scripts.evaluation.backtest import evaluate_model, plot_equity
from workflow_scripts.evaluation.costs import ConfigCostProvider, cost_snapshot


def synthetic_year(n_events: int, horizon: int, seed: int = 0) -> dict:
    n_bars = 24 * 365
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.006, n_bars)))
    pos = np.sort(rng.choice(np.arange(48, n_bars - horizon - 1), n_events, replace=False))
    label = rng.choice(3, n_events, p=[0.4, 0.3, 0.3])
    proba = rng.dirichlet([1, 1, 1], n_events)
    proba[np.arange(n_events), label] += 0.4
    proba /= proba.sum(axis=1, keepdims=True)
    sigma = np.abs(rng.normal(0.006, 0.001, n_events))
    theta = 1.0
    # realised exits as the targets stage will provide them: first touch or t + H
    exit_pos = pos + rng.integers(1, horizon + 1, n_events)
    exit_pos = np.where(label == 0, pos + horizon, exit_pos)
    move = np.log(close[pos + horizon] / close[pos])
    exit_logret = np.select([label == 1, label == 2], [theta * sigma, -theta * sigma], move)
    return {
        "pos": pos,
        "side": "high",
        "proba": proba,
        "label": label,
        "barrier_logret": theta * sigma,
        "horizon": horizon,
        "close": close,
        "sigma": sigma,
        "exit_pos": exit_pos,
        "exit_logret": exit_logret,
        "segment": (0, n_bars),
    }


def rate(fn, seconds: float) -> tuple[float, int]:
    fn()  # warm-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start), n


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=700)
    ap.add_argument("--horizon", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    costs = yaml.safe_load((ROOT / "config/costs/default.yaml").read_text())
    gates = yaml.safe_load((ROOT / "config/gates/strict.yaml").read_text())
    grades = yaml.safe_load((ROOT / "config/grades/default.yaml").read_text())
    inputs = synthetic_year(args.events, args.horizon)
    kw = {
        "costs": cost_snapshot(ConfigCostProvider(costs), "BTCUSDT"),
        "rule": {"threshold": 0.5},
        "n_trials": 24,
        "gate_profile": gates,
        "grades": grades,
    }
    res = evaluate_model(**inputs, **kw)
    per_s, n = rate(lambda: evaluate_model(**inputs, **kw), args.seconds)
    with_curves, _ = rate(
        lambda: evaluate_model(**inputs, **kw, include_curves=True, include_trades=True), args.seconds / 2
    )
    curves = evaluate_model(**inputs, **kw, include_curves=True)
    with tempfile.TemporaryDirectory() as tmp:
        plots, _ = rate(lambda: plot_equity(Path(tmp) / "eq.png", curves, "bench"), args.seconds / 2)
    report = {
        "bars": 24 * 365,
        "events": args.events,
        "horizon": args.horizon,
        "trades": res["counts"]["n_trades"],
        "evaluations_per_second": round(per_s, 1),
        "ms_per_evaluation": round(1000 / per_s, 3),
        "evaluations_timed": n,
        "with_curves_and_trades_per_second": round(with_curves, 1),
        "equity_plots_per_second": round(plots, 2),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
