"""Agents: a tiny PPO fit is deterministic (same seed -> same actions), SAC and TD3 run through the same
interface on the continuous env, and scoring returns the project's trade metrics."""

from __future__ import annotations

import numpy as np
import pytest

from tests.agents.conftest import AGENTS, make_env, random_market
from workflow_scripts.agents.agents import AgentParams, run_policy, score_on_validation, train_agent
from workflow_scripts.config.schema import config_group

TINY = AGENTS["agent"] | {"kind": "ppo", "net_width": 16, "batch_size": 32, "n_steps": 64}
TINY |= {"total_timesteps": 256}


def _actions(model, market):
    env = make_env(market, segment=(300, 400), lookback=2)
    return run_policy(model, env)["positions"]


def test_tiny_ppo_is_deterministic_under_a_seed():
    market = random_market()
    runs, weights = [], []
    for _ in range(2):
        model = train_agent(make_env(market, segment=(30, 300), lookback=2, episode_bars=64), TINY, seed=5)
        runs.append(_actions(model, market))
        weights.append(np.concatenate([p.detach().numpy().ravel() for p in model.policy.parameters()]))
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(weights[0], weights[1])
    params = [
        train_agent(make_env(market, segment=(30, 300), lookback=2, episode_bars=64), TINY, seed=s).policy
        for s in (5, 6)
    ]
    first, other = (np.concatenate([p.detach().numpy().ravel() for p in m.parameters()]) for m in params)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("kind", ["sac", "td3"])
def test_continuous_agents_share_the_interface(kind):
    market = random_market()
    env = make_env(market, segment=(30, 300), continuous=True)
    model = train_agent(env, TINY | {"kind": kind, "total_timesteps": 150, "learning_starts": 50}, seed=1)
    result = score_on_validation(
        model, make_env(market, segment=(300, 400), continuous=True), grades=config_group("grades")
    )
    assert result["segment"]["n_steps"] == 99
    assert -1.0 <= result["after_costs"]["total_return"]


def test_sac_refuses_a_discrete_env():
    with pytest.raises(ValueError, match="continuous"):
        train_agent(make_env(), TINY | {"kind": "sac"}, seed=0)


def test_score_on_validation_reports_project_metrics():
    market = random_market()
    model = train_agent(make_env(market, segment=(30, 300), lookback=2), TINY, seed=0)
    result = score_on_validation(
        model, make_env(market, segment=(300, 400), lookback=2), n_trials=7, grades=config_group("grades")
    )
    after = result["after_costs"]
    for key in ("sharpe", "sharpe_per_trade", "max_drawdown", "total_return", "n_trades", "psr", "dsr"):
        assert key in after
    assert result["sharpe_tests"]["n_trials"] == 7
    assert result["grade"]["min_trades"] == config_group("grades")["min_trades"]
    assert result["scored_on"] == "validation"
    counts = result["counts"]
    assert counts["long_bars"] + counts["short_bars"] + counts["flat_bars"] == 99


def test_agent_params_reject_unknown_keys_and_kinds():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['width'\], missing key\(s\) \[.*'net_width'"):
        AgentParams.from_mapping(TINY | {"width": 3})
    with pytest.raises(ValueError, match=r"agent kind must be one of \['ppo', 'sac', 'td3'\], got 'dqn'"):
        AgentParams.from_mapping(TINY | {"kind": "dqn"})
