"""TorchScript export of agent policies: parity with SB3's deterministic predict on the observations the
policy really visits (PPO discrete and continuous, SAC, TD3), the same bytes in any process, and a policy
whose weights changed fails the parity check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.agents.conftest import AGENTS, make_env, random_market
from workflow_scripts.agents import export
from workflow_scripts.agents.agents import train_agent
from workflow_scripts.models.torch_models import load_scripted

TINY = AGENTS["agent"] | {"net_width": 16, "batch_size": 32, "n_steps": 64, "total_timesteps": 256}
TINY |= {"learning_starts": 64}
CASES = [("ppo", False), ("ppo", True), ("sac", True), ("td3", True)]


@pytest.fixture(scope="module")
def market():
    return random_market(n=420, seed=8)


def _fit(market, kind, continuous):
    env = make_env(market, segment=(30, 300), lookback=2, continuous=continuous, episode_bars=64)
    return train_agent(env, TINY | {"kind": kind}, seed=2)


@pytest.mark.parametrize(("kind", "continuous"), CASES)
def test_scripted_policy_matches_sb3_on_visited_observations(market, kind, continuous):
    model = _fit(market, kind, continuous)
    data = export.policy_bytes(model)
    obs = export.observations(model, make_env(market, segment=(300, 420), lookback=2, continuous=continuous))
    assert len(obs) == 119  # one per step of the validation episode
    checked = export.parity(model, data, obs)
    assert checked["max_abs_diff"] <= export.PARITY_ATOL and checked["tolerance"] == 1e-5
    scripted = load_scripted(data)
    sb3, _ = model.predict(obs, deterministic=True)
    with torch.no_grad():
        positions = scripted(torch.from_numpy(obs)).numpy()
        weights = scripted.weights(torch.from_numpy(obs)).numpy()
    if continuous:
        np.testing.assert_allclose(positions, np.clip(sb3.reshape(-1), -1, 1), atol=export.PARITY_ATOL)
    else:
        assert checked["actions_equal"] == 1.0
        np.testing.assert_array_equal(positions, np.array([0.0, 1.0, -1.0])[sb3])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)  # (flat, long, short) weights


def test_export_bytes_are_identical_across_processes(market):
    model = _fit(market, "ppo", False)
    assert export.policy_bytes(model) == export.policy_bytes(model)


def test_parity_fails_for_a_changed_policy(market):
    model = _fit(market, "ppo", True)
    net = export.policy_module(model)
    with torch.no_grad():
        net.head.bias += 0.5
    data = export.fresh_script_bytes(net, f"{export.__name__}:rebuild", "agent policy")
    obs = export.observations(model, make_env(market, segment=(300, 420), lookback=2, continuous=True))
    message = r"agent policy TorchScript parity: max \|diff\| .* \(tolerance 1e-05\)"
    with pytest.raises(AssertionError, match=message):
        export.parity(model, data, obs)
