"""Agent ensemble: a member sees its own lookback of the ensemble's observation, one member averaged is that
member, the choice reads validation only (the test bars can change freely) and candidates are ranked by
validation value."""

from __future__ import annotations

import numpy as np
import pytest

from tests.agents.conftest import AGENTS, COSTS, make_env, random_market
from workflow_scripts.agents import export
from workflow_scripts.agents.agents import run_policy, train_agent
from workflow_scripts.agents.ensemble import (
    EnsemblePolicy,
    Member,
    choose_on_validation,
    ensemble_settings,
    ranked_trials,
)
from workflow_scripts.agents.environment import MarketData, TradingEnv
from workflow_scripts.agents.tuning import NO_SCORE
from workflow_scripts.config.schema import config_group

TINY = AGENTS["agent"] | {"net_width": 16, "batch_size": 32, "n_steps": 64, "total_timesteps": 256}
TINY |= {"learning_starts": 64}
TRAIN, VALIDATION = (30, 260), (260, 340)  # test: 340 .. 420


@pytest.fixture(scope="module")
def market():
    return random_market(n=420, seed=9)


@pytest.fixture(scope="module")
def members(market):
    out = []
    specs = [("ppo", False, 1), ("sac", True, 3), ("ppo", False, 2)]
    for i, (kind, continuous, lookback) in enumerate(specs):
        env = make_env(market, segment=TRAIN, lookback=lookback, continuous=continuous, episode_bars=64)
        model = train_agent(env, TINY | {"kind": kind}, seed=i)
        out.append((Member(f"M{i}", kind, i, 0.0, lookback, export.policy_module(model)), model, continuous))
    return out


def _choose(members, data):
    return choose_on_validation(
        [m for m, _, _ in members],
        data,
        VALIDATION,
        COSTS,
        env=AGENTS["env"],
        max_members=3,
        methods=["positions", "probabilities"],
        objective="sharpe_per_trade",
        min_trades=0,
        grades=config_group("grades"),
    )


def test_a_member_reads_its_own_lookback_and_the_ensemble_state(market, members):
    policy = EnsemblePolicy([m for m, _, _ in members], "positions", market.features.shape[1])
    assert policy.lookback == 3
    big = TradingEnv(market, VALIDATION, COSTS, ensemble_settings(AGENTS["env"], 3))
    obs, _ = big.reset(seed=0)
    for _ in range(5):
        obs, *_ = big.step(np.array([1.0], np.float32))  # long: a non-zero position state
    own = TradingEnv(market, VALIDATION, COSTS, ensemble_settings(AGENTS["env"], 1))
    own_obs, _ = own.reset(seed=0)
    for _ in range(5):
        own_obs, *_ = own.step(np.array([1.0], np.float32))
    np.testing.assert_array_equal(policy.member_observation(obs, 1), own_obs)


def test_one_member_averaged_is_that_member(market, members):
    member, model, _ = members[0]
    alone = run_policy(model, make_env(market, segment=VALIDATION, lookback=1))
    policy = EnsemblePolicy([member], "positions", market.features.shape[1])
    together = run_policy(policy, TradingEnv(market, VALIDATION, COSTS, ensemble_settings(AGENTS["env"], 1)))
    np.testing.assert_array_equal(alone["positions"], together["positions"])
    np.testing.assert_allclose(alone["bar_returns"], together["bar_returns"], rtol=0, atol=1e-15)


def test_probability_averaging_holds_whole_positions(market, members):
    policy = EnsemblePolicy([m for m, _, _ in members], "probabilities", market.features.shape[1])
    ledger = run_policy(policy, TradingEnv(market, VALIDATION, COSTS, ensemble_settings(AGENTS["env"], 3)))
    assert set(np.unique(ledger["positions"])) <= {-1.0, 0.0, 1.0}


def test_the_choice_reads_validation_only(market, members):
    rng = np.random.default_rng(5)
    test_lo = VALIDATION[1]
    features, close, sigma = market.features.copy(), market.close.copy(), market.sigma.copy()
    features[test_lo:] = rng.normal(0, 5, features[test_lo:].shape)
    close[test_lo:] *= np.exp(rng.normal(0, 0.2, len(close) - test_lo))
    sigma[test_lo:] = 0.5
    first = _choose(members, market)
    again = _choose(members, MarketData(features, close, sigma))
    assert first == again
    assert len(first["candidates"]) == 6 and first["scored_on"] == "validation"
    best = first["chosen"]
    assert best["value"] == max(c["value"] for c in first["candidates"])


def test_trials_are_ranked_by_validation_value_over_kinds():
    studies = [
        {"kind": "ppo", "trials": [{"number": 0, "value": 0.1}, {"number": 1, "value": NO_SCORE}]},
        {"kind": "sac", "trials": [{"number": 0, "value": 0.3}, {"number": 1, "value": 0.1}]},
    ]
    ranked = ranked_trials(studies, ["ppo", "sac"])
    assert [(t["kind"], t["number"]) for t in ranked] == [("sac", 0), ("ppo", 0), ("sac", 1)]
