"""The costed trading environment: gymnasium's checker, cost accounting on a hand-computed episode, no
look-ahead, determinism under a seed, the train-only standardisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from tests.agents.conftest import COSTS, make_env, random_market, settings
from workflow_scripts.agents.environment import (
    FLAT,
    LONG,
    SHORT,
    EnvSettings,
    MarketData,
    TradingEnv,
    position_change,
    standardise,
)


@pytest.mark.parametrize("continuous", [False, True])
def test_env_passes_gymnasium_checker(continuous):
    env = make_env(continuous=continuous, lookback=3)
    check_env(env, skip_render_check=True)


def test_env_passes_sb3_checker():
    from stable_baselines3.common.env_checker import check_env as sb3_check

    sb3_check(make_env(lookback=2), warn=False)


def test_hand_computed_five_bar_episode():
    """Long, hold, flip short, hold; the open short is liquidated on the last bar.

    Costs per side at sigma 0.01: slippage 1 + 0.1 * 0.01 * 1e4 = 11 bps; entry (taker) 10 + 2 + 11 = 23 bps,
    exit (maker) 2 + 2 + 11 = 15 bps."""
    close = np.array([100.0, 101.0, 99.0, 102.0, 100.0])
    data = MarketData(np.zeros((5, 1), np.float32), close, np.full(5, 0.01))
    env = TradingEnv(data, (0, 5), COSTS, settings(time_decay=0.0, drawdown_penalty=0.0, reward_scale=1.0))
    env.reset(seed=0)
    entry, exit_ = 0.0023, 0.0015
    expected = [
        (1 - entry) * (101 / 100),
        99 / 101,
        (1 - exit_) * (1 - entry) * (1 - (102 / 99 - 1)),
        (1 - (100 / 102 - 1)) * (1 - exit_),
    ]
    rewards, done = [], False
    for action in (LONG, LONG, SHORT, SHORT):
        assert not done
        _, reward, done, truncated, info = env.step(action)
        rewards.append(reward)
        assert not truncated
    assert done
    np.testing.assert_allclose(rewards, np.log(expected), rtol=0, atol=1e-12)
    ledger = env.ledger()
    long_trade = (1 - entry) * (101 / 100) * (99 / 101) * (1 - exit_) - 1
    short_trade = (1 - entry) * (1 - (102 / 99 - 1)) * (1 - (100 / 102 - 1)) * (1 - exit_) - 1
    np.testing.assert_allclose(ledger["trade_returns"], [long_trade, short_trade], atol=1e-12)
    np.testing.assert_allclose(ledger["bar_returns"], np.array(expected) - 1, atol=1e-12)
    assert ledger["held_bars"] == 4
    # Sum of log returns = log of the after-cost equity = the trades compounded.
    assert math.isclose(sum(rewards), math.log((1 + long_trade) * (1 + short_trade)), abs_tol=1e-12)


def test_flat_episode_pays_nothing_and_earns_nothing():
    env = make_env()
    env.reset(seed=0)
    done, total = False, 0.0
    while not done:
        _, reward, done, _, info = env.step(FLAT)
        total += abs(reward) + info["cost"]
    assert total == 0.0
    assert len(env.ledger()["trade_returns"]) == 0


@pytest.mark.parametrize(
    "old,new,closed,opened",
    [
        (0, 1, 0, 1),
        (1, -1, 1, 1),
        (1, 0, 1, 0),
        (0.5, 0.8, 0, 0.3),
        (0.8, 0.5, 0.3, 0),
        (0.5, -0.3, 0.5, 0.3),
    ],
)
def test_position_change_splits_closing_and_opening(old, new, closed, opened):
    assert position_change(old, new) == pytest.approx((closed, opened))


def test_continuous_partial_change_pays_costs_on_the_traded_notional():
    close = np.array([100.0, 100.0, 100.0, 100.0])
    data = MarketData(np.zeros((4, 1), np.float32), close, np.full(4, 0.01))
    plain = settings(continuous=True, time_decay=0.0, drawdown_penalty=0.0, reward_scale=1.0)
    env = TradingEnv(data, (0, 4), COSTS, plain)
    env.reset(seed=0)
    _, r1, *_ = env.step(np.array([0.5], np.float32))
    _, r2, *_ = env.step(np.array([0.25], np.float32))
    _, r3, done, *_ = env.step(np.array([0.25], np.float32))
    assert math.isclose(r1, math.log(1 - 0.5 * 0.0023), abs_tol=1e-12)
    assert math.isclose(r2, math.log(1 - 0.25 * 0.0015), abs_tol=1e-12)
    assert math.isclose(r3, math.log(1 - 0.25 * 0.0015), abs_tol=1e-12)  # liquidation at the end
    assert done


def test_observation_at_t_ignores_every_bar_after_t():
    base = random_market(n=200, seed=1)
    t_check = 120
    rng = np.random.default_rng(9)
    features = base.features.copy()
    features[t_check + 1 :] = rng.normal(0, 50, features[t_check + 1 :].shape)
    close = base.close.copy()
    close[t_check + 1 :] *= np.exp(rng.normal(0, 0.2, len(close) - t_check - 1))
    sigma = base.sigma.copy()
    sigma[t_check + 1 :] = 0.5
    perturbed = MarketData(features, close, sigma)
    actions = np.random.default_rng(3).integers(0, 3, t_check - 40)
    observations = []
    for data in (base, perturbed):
        env = TradingEnv(data, (40, 200), COSTS, settings(lookback=5))
        obs, _ = env.reset(seed=0)
        for a in actions:
            obs, *_ = env.step(a)
        assert env.ledger()["bars"][0] == 40 and env._t == t_check
        observations.append(obs)
    np.testing.assert_array_equal(observations[0], observations[1])


def test_observation_window_reads_the_last_lookback_rows_and_the_position_state():
    data = random_market(n=100, n_features=2, seed=2)
    env = TradingEnv(data, (10, 100), COSTS, settings(lookback=3))
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs[:6], np.nan_to_num(data.features[8:11]).reshape(-1))
    obs, *_ = env.step(SHORT)
    obs, *_ = env.step(SHORT)
    expected_unrealised = -math.log(data.close[12] / data.close[10])
    np.testing.assert_allclose(obs[-3:], [-1.0, expected_unrealised, math.log1p(2)], rtol=1e-5)


def test_random_episodes_are_deterministic_under_a_seed():
    def rollout(seed):
        env = make_env(episode_bars=50, lookback=2)
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        trace = [obs]
        done = False
        while not done:
            obs, reward, done, _, _ = env.step(rng.integers(0, 3))
            trace.append(np.append(obs, reward))
        return info["bar"], np.concatenate(trace)

    first, second, other = rollout(11), rollout(11), rollout(12)
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    assert first[0] != other[0]


def test_penalties_lower_the_reward_but_not_the_ledger():
    plain = make_env(time_decay=0.0, drawdown_penalty=0.0)
    penalised = make_env(time_decay=5.0, drawdown_penalty=1.0)
    for env in (plain, penalised):
        env.reset(seed=0)
    rewards = {id(plain): [], id(penalised): []}
    done = False
    while not done:
        for env in (plain, penalised):
            _, reward, done, _, _ = env.step(LONG)
            rewards[id(env)].append(reward)
    assert sum(rewards[id(penalised)]) < sum(rewards[id(plain)])
    np.testing.assert_array_equal(plain.ledger()["bar_returns"], penalised.ledger()["bar_returns"])


def test_standardise_uses_train_rows_only():
    x = np.random.default_rng(0).normal(3.0, 2.0, (300, 3))
    changed = x.copy()
    changed[200:] += 100.0
    a, stats_a = standardise(x, (0, 200))
    b, stats_b = standardise(changed, (0, 200))
    assert stats_a == stats_b
    np.testing.assert_array_equal(a[:200], b[:200])
    assert abs(float(a[:200].mean())) < 1e-6


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['look_back'\], missing key\(s\) \[.*'lookb"):
        EnvSettings.from_mapping({"look_back": 3})
    with pytest.raises(ValueError, match="episode_bars"):
        make_env(episode_bars=10_000)
