import json
from pathlib import Path

import numpy as np
import yaml

from workflow_scripts.artifacts import to_json_text
from workflow_scripts.evaluation.backtest import evaluate_model, plot_equity, select_threshold
from workflow_scripts.evaluation.costs import ConfigCostProvider, cost_snapshot, zero_costs

ROOT = Path(__file__).resolve().parents[2]
COSTS = yaml.safe_load((ROOT / "config" / "costs" / "default.yaml").read_text())
STRICT = yaml.safe_load((ROOT / "config" / "gates" / "strict.yaml").read_text())
GRADES = yaml.safe_load((ROOT / "config" / "grades" / "default.yaml").read_text())


def synthetic(n_bars=2000, n_events=200, horizon=5, seed=0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.005, n_bars)))
    pos = np.sort(rng.choice(np.arange(30, n_bars - horizon - 1), n_events, replace=False))
    label = rng.integers(0, 3, n_events)
    proba = rng.dirichlet([1, 1, 1], n_events)
    proba[np.arange(n_events), label] += 0.5  # an informative model
    proba /= proba.sum(axis=1, keepdims=True)
    sigma = np.full(n_events, 0.005)
    return {
        "pos": pos,
        "side": "high",
        "proba": proba,
        "label": label,
        "barrier_logret": 1.0 * sigma,
        "horizon": horizon,
        "close": close,
        "sigma": sigma,
    }


def test_result_is_plain_json_deterministic_and_complete():
    inputs = synthetic()
    snap = cost_snapshot(ConfigCostProvider(COSTS), "BTCUSDT")
    kw = {
        "segment": (1000, 2000),
        "costs": snap,
        "rule": {"threshold": 0.5},
        "n_trials": 24,
        "trial_sharpes": [0.05, -0.02, 0.1, 0.0],
        "gate_profile": STRICT,
        "grades": GRADES,
    }
    a = evaluate_model(**inputs, **kw)
    b = evaluate_model(**inputs, **kw)
    assert to_json_text(a) == to_json_text(b)
    assert json.loads(json.dumps(a)) == a
    assert a["costs"]["symbol"] == "BTCUSDT" and a["gate"]["profile"] == "strict"
    assert a["sharpe_tests"]["n_trials"] == 24 and a["sharpe_tests"]["sr_variance_source"] == "trials"
    assert a["after_costs"]["n_trades"] == a["counts"]["n_trades"] > 0
    assert a["after_costs"]["total_return"] < a["before_costs"]["total_return"]
    assert a["grade"]["basis"] == "per_trade"
    for key in (
        "total_return",
        "annual_return",
        "sharpe",
        "sortino",
        "max_drawdown",
        "hit_rate",
        "profit_factor",
        "turnover",
        "exposure",
        "psr",
        "dsr",
    ):
        assert key in a["after_costs"]
    assert set(a["classifier"]) >= {"macro_ap", "log_loss", "per_class"}


def test_only_rows_inside_the_segment_trade():
    inputs = synthetic()
    res = evaluate_model(
        **inputs, segment=(1000, 1500), costs=zero_costs(), rule={"threshold": 0.4}, include_trades=True
    )
    entries, exits = np.array(res["trades"]["entry_pos"]), np.array(res["trades"]["exit_pos"])
    assert entries.min() >= 1000 and exits.max() < 1500
    assert res["before_costs"]["total_return"] == res["after_costs"]["total_return"]  # zero costs


def test_changing_costs_changes_only_after_cost_results():
    inputs = synthetic()
    cheap = evaluate_model(**inputs, segment=(0, 2000), costs=zero_costs("BTCUSDT"))
    dear = evaluate_model(
        **inputs, segment=(0, 2000), costs=cost_snapshot(ConfigCostProvider(COSTS), "ADAUSDT")
    )
    assert cheap["before_costs"] == dear["before_costs"]
    assert dear["after_costs"]["total_return"] < cheap["after_costs"]["total_return"]


def test_threshold_chosen_on_validation():
    inputs = synthetic()
    sel = select_threshold([0.4, 0.5, 0.6], min_trades=5, **inputs, segment=(0, 1000), costs=zero_costs())
    assert sel["threshold"] in (0.4, 0.5, 0.6) and len(sel["table"]) == 3
    none = select_threshold([0.4], min_trades=10_000, **inputs, segment=(0, 1000), costs=zero_costs())
    assert none["threshold"] == 0.5 and none["chosen_by"].startswith("fallback")


def test_equity_plot_is_a_png(tmp_path):
    inputs = synthetic()
    res = evaluate_model(
        **inputs, segment=(0, 2000), costs=zero_costs(), gate_profile=STRICT, include_curves=True
    )
    assert len(res["curves"]["equity_net"]) == 2001
    out = tmp_path / "equity.png"
    plot_equity(out, res, "BTCUSDT w5 high_breakout_k1.5_th1.0")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_trades_is_a_result_not_an_error():
    inputs = synthetic()
    res = evaluate_model(
        **inputs,
        segment=(0, 2000),
        costs=zero_costs(),
        rule={"threshold": 0.99},
        gate_profile=STRICT,
        grades=GRADES,
    )
    assert res["counts"]["n_trades"] == 0 and res["after_costs"]["total_return"] == 0.0
    assert not res["gate"]["passed"] and "min_trades" in res["gate"]["failed_gates"]
    assert res["grade"]["grade"] == "N"  # no trades: insufficient evidence, not a graded F


def test_contract_with_the_targets_table():
    """The targets stage's real output plugs straight in (docs/TARGETS.md columns)."""
    import pandas as pd

    from workflow_scripts.evaluation.backtest import rows_from_targets
    from workflow_scripts.targets.grammar import target_grid
    from workflow_scripts.targets.swing_targets import build_targets

    bars = pd.read_parquet(ROOT / "data/raw/BTCUSDT_1h.parquet").iloc[:3000].reset_index(drop=True)
    if "timestamp" not in bars:
        bars = bars.rename(columns={"date": "timestamp"})
    bars["timestamp"] = pd.to_datetime(bars["timestamp"], utc=True)
    grid = [
        g
        for g in target_grid(
            {"types": ["high_breakout"], "std_thresholds": [1.5], "barrier_thresholds": [1.0]}
        )
    ]
    window, horizon = 5, 5
    table = build_targets(bars, window, grid, horizon, 24)
    rows = rows_from_targets(table, grid[0]["id"], horizon)
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([1, 1, 1], len(rows["pos"]))
    snap = cost_snapshot(ConfigCostProvider(COSTS), "BTCUSDT")
    res = evaluate_model(
        **rows,
        proba=proba,
        horizon=horizon,
        close=bars["close"].to_numpy(),
        segment=(1500, 3000),
        costs=snap,
        rule={"threshold": 0.4},
        include_trades=True,
        gate_profile=STRICT,
    )
    tr = res["trades"]
    assert res["counts"]["n_trades"] > 0
    assert all(0 < x - e <= horizon for e, x in zip(tr["entry_pos"], tr["exit_pos"]))
    assert all(e2 >= x1 for x1, e2 in zip(tr["exit_pos"][:-1], tr["entry_pos"][1:]))
