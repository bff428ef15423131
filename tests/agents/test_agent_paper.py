"""Paper trading of an agent (agents/paper.py + lifecycle/paper.write_ledger): the bars after its last bar
replayed through a deterministic policy in the same TradingEnv, into an append-only idempotent ledger. A
hand-built policy (long when the newest feature is positive, short when negative, flat near zero) on a
synthetic market, so every number is checked against the environment itself."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.agents.conftest import AGENTS, COSTS, settings
from tests.conftest import hourly
from workflow_scripts.agents import paper as agent_paper
from workflow_scripts.agents.environment import TradingEnv, market_data
from workflow_scripts.evaluation.costs import snapshot_of
from workflow_scripts.lifecycle import paper

N, LAST = 300, 199  # bars; the agent's last bar (paper starts at LAST + 1)
VIN = "PPO-A-N64B64-L3E4G99-LB2TD0-20240101"
ENV = AGENTS["env"] | {"lookback": 2, "continuous": False, "episode_bars": None}


def policy(obs: np.ndarray) -> int:
    """Discrete action from the newest row's first feature (lookback 2, 2 features: index 2)."""
    x = float(obs[2])
    return 1 if x > 0.3 else 2 if x < -0.3 else 0


def market(n: int = N, seed: int = 0):
    rng = np.random.default_rng(seed)
    bars = pd.DataFrame(
        {"timestamp": hourly(n), "close": 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))}
    )
    return bars, rng.normal(0.0, 1.0, (n, 2)).astype(np.float32)


def record(bars, feats):
    last = bars["timestamp"].iloc[LAST]
    return agent_paper.paper_record(
        policy, feats, bars, last, env=ENV, costs=snapshot_of(COSTS), sigma_bars=24
    )


def write(tmp_path, rec):
    return paper.write_ledger(tmp_path, 3, VIN, rec, {"vin": VIN})


def test_the_ledger_is_the_environment_run_without_its_liquidating_last_step():
    bars, feats = market()
    rec = record(bars, feats)
    env = TradingEnv(
        market_data(feats, bars["close"].to_numpy(), bars["timestamp"], 24),
        (LAST + 1, N),
        COSTS,
        settings(**ENV),
    )
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        obs, _, done, _, _ = env.step(policy(obs))
    full = env.ledger()
    rets = [json.loads(line)["ret"] for line in rec["equity"]]
    # every step but the last (which liquidates the open position) is in the ledger, with the env's costs
    assert rec["n_bars"] == len(full["bar_returns"]) - 1 == N - LAST - 3
    np.testing.assert_allclose(rets, full["bar_returns"][:-1], rtol=0, atol=1e-15)
    # no paper bar at or before the agent's last bar: the first return is realised at bar LAST + 2
    assert rec["paper_start"] == bars["timestamp"].iloc[LAST + 2].isoformat()
    trades = [json.loads(line) for line in rec["trades"]]
    assert rec["n_trades"] == len(trades) > 0
    assert all(pd.Timestamp(t["entry_time"]) > bars["timestamp"].iloc[LAST] for t in trades)
    # the closed trades are the env's, minus the one the liquidation would close
    np.testing.assert_allclose(
        [t["net_ret"] for t in trades], full["trade_returns"][: len(trades)], rtol=0, atol=1e-15
    )
    assert rec["paper"]["n_trades"] == len(trades)
    assert rec["paper"]["total_return"] == pytest.approx(np.prod(1 + np.asarray(rets)) - 1, abs=1e-12)


def test_the_ledger_is_append_only_and_idempotent(tmp_path):
    bars, feats = market()
    write(tmp_path, record(bars.iloc[:260], feats[:260]))
    files = {name: paper.ledger_path(tmp_path, 3, VIN) / name for name in paper.LEDGER_FILES}
    before = {k: (p.read_bytes(), p.stat().st_mtime_ns) for k, p in files.items()}
    again = write(tmp_path, record(bars.iloc[:260], feats[:260]))
    assert again["appended"] == {"bars": 0, "trades": 0}
    assert {k: (p.read_bytes(), p.stat().st_mtime_ns) for k, p in files.items()} == before
    # appended bars extend it; the old bytes stay in front
    grown = write(tmp_path, record(bars, feats))
    assert grown["appended"]["bars"] == N - 260
    equity = files[paper.EQUITY_FILE].read_bytes()
    assert equity.startswith(before[paper.EQUITY_FILE][0]) and len(equity) > len(before[paper.EQUITY_FILE][0])
    # the ledger it grew into is the one a single call on all bars writes
    write(tmp_path / "fresh", record(bars, feats))
    assert (paper.ledger_path(tmp_path / "fresh", 3, VIN) / paper.EQUITY_FILE).read_bytes() == equity


def test_a_revised_past_is_refused(tmp_path):
    bars, feats = market()
    write(tmp_path, record(bars, feats))
    revised = bars.copy()
    revised.loc[LAST + 10, "close"] *= 1.05
    with pytest.raises(paper.LedgerError, match="differs from the ledger at line"):
        write(tmp_path, record(revised, feats))


def test_no_bar_after_the_last_bar_gives_an_empty_record():
    bars, feats = market(LAST + 3)
    rec = record(bars, feats)
    assert rec["n_bars"] == 0 and rec["equity"] == [] and rec["paper"] is None


def test_observations_use_the_recorded_statistics():
    got = agent_paper.standardised(np.array([[1.0, 4.0]]), {"mean": [1.0, 2.0], "std": [1.0, 2.0]})
    np.testing.assert_allclose(got, [[0.0, 1.0]])
    with pytest.raises(ValueError, match="expected 2 feature columns, got shape"):
        agent_paper.standardised(np.zeros((3, 3)), {"mean": [1.0, 2.0], "std": [1.0, 2.0]})


@pytest.mark.parametrize("continuous", [False, True])
def test_the_exported_policy_trades_the_ledger_sb3_would(continuous):
    """A tiny real PPO (discrete and continuous), exported to TorchScript: the paper record through the
    scripted policy equals the one through SB3's deterministic predict."""
    from tests.agents.conftest import make_env
    from workflow_scripts.agents import export
    from workflow_scripts.agents.agents import train_agent
    from workflow_scripts.models.torch_models import load_scripted

    bars, feats = market()
    data = market_data(feats, bars["close"].to_numpy(), bars["timestamp"], 24)
    env = ENV | {"continuous": continuous, "episode_bars": 64}
    tiny = AGENTS["agent"] | {"kind": "ppo", "net_width": 16, "batch_size": 32, "n_steps": 64}
    model = train_agent(make_env(data, segment=(10, LAST), **env), tiny | {"total_timesteps": 128}, seed=2)
    scripted = agent_paper.scripted_policy(load_scripted(export.policy_bytes(model)))
    last = bars["timestamp"].iloc[LAST]
    runs = [
        agent_paper.paper_record(
            p,
            feats,
            bars,
            last,
            env=ENV | {"continuous": continuous},
            costs=snapshot_of(COSTS),
            sigma_bars=24,
        )
        for p in (scripted, lambda obs: model.predict(obs, deterministic=True)[0])
    ]
    assert runs[0]["equity"] == runs[1]["equity"] and runs[0]["trades"] == runs[1]["trades"]
    assert runs[0]["n_bars"] == N - LAST - 3
