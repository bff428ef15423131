"""TorchScript export of agent policies: what a registry consumer loads (an SB3 zip is a pickle).

    policy_module(model) -> PolicyNet       the SB3 policy's deterministic actor as a plain torch module
    policy_bytes(model) -> bytes            TorchScript of it, scripted in a fresh interpreter (same bytes)
    parity(model, data, observations)       SB3 `predict(deterministic=True)` vs the TorchScript file

The exported module (`load_scripted`, models/torch_models.py) takes the environment's observation
(environment.py: `lookback` standardised feature rows then position, unrealised log return, log1p(bars in
trade); float32 (B, D)) and returns

    forward(obs) -> (B,) position in [-1, 1]: the deterministic action as a position (discrete: argmax of the
                    logits mapped to flat 0 / long 1 / short -1; continuous: the action clipped to [-1, 1])
    action(obs)  -> (B, A) what SB3's `predict(obs, deterministic=True)` returns, as float (discrete: the
                    action index (B, 1); continuous: the action (B, 1))
    weights(obs) -> (B, 3) action weights (flat, long, short): the discrete policy's action probabilities
                    (softmax of the logits); for a continuous position p: (1 - |p|, max(p, 0), max(-p, 0))

How SB3 acts deterministically (stable-baselines3 2.x, MlpPolicy, Box observations are only cast to float):
PPO discrete: argmax of `action_net(mlp_extractor.policy_net(obs))`; PPO continuous: the Gaussian mean
`action_net(...)`, clipped to the action space by `predict`; SAC: tanh(`mu(latent_pi(obs))`); TD3: `mu(obs)`
(ends in Tanh). The actor's layers are copied into a fresh module, so the export depends on torch only.

Parity (`PARITY_ATOL` = 1e-5, float32): continuous actions differ by at most PARITY_ATOL; discrete
probabilities differ by at most PARITY_ATOL and the actions are equal wherever the policy's top two logits
are more than PARITY_ATOL apart (a tie may break either way in two float implementations)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from torch import nn

from workflow_scripts.agents.environment import TradingEnv
from workflow_scripts.models.torch_models import load_scripted

PARITY_ATOL = 1e-5
MODES = ("discrete", "gaussian", "squashed")
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


class PolicyNet(nn.Module):
    """obs (B, D) -> position (B,); `action`, `weights` as in the module docstring. `mode`: discrete (logits),
    gaussian (PPO's mean, clipped), squashed (tanh of the head: SAC, TD3)."""

    def __init__(self, n_obs: int, widths: list[int], activation: str, n_out: int, mode: str):
        super().__init__()
        if mode not in MODES or activation not in ACTIVATIONS:
            raise ValueError(f"policy export: mode one of {MODES}, activation one of {sorted(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        width = int(n_obs)
        for w in widths:
            layers += [nn.Linear(width, int(w)), ACTIVATIONS[activation]()]
            width = int(w)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, int(n_out))
        self.mode = mode
        self.n_obs = int(n_obs)
        self.register_buffer("positions", torch.tensor([0.0, 1.0, -1.0]))  # by discrete action
        self._recipe = {
            "n_obs": int(n_obs),
            "widths": [int(w) for w in widths],
            "activation": activation,
            "n_out": int(n_out),
            "mode": mode,
        }

    def recipe(self) -> dict:
        return dict(self._recipe)

    def _out(self, obs: torch.Tensor) -> torch.Tensor:
        if obs.dim() != 2 or obs.size(1) != self.n_obs:
            raise RuntimeError("PolicyNet expects observations (batch, " + str(self.n_obs) + ")")
        return self.head(self.body(obs.to(torch.float32)))

    @torch.jit.export
    def action(self, obs: torch.Tensor) -> torch.Tensor:
        out = self._out(obs)
        if self.mode == "discrete":
            return torch.argmax(out, dim=1, keepdim=True).to(torch.float32)
        if self.mode == "squashed":
            return torch.tanh(out)
        return torch.clamp(out, -1.0, 1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        act = self.action(obs)
        if self.mode == "discrete":
            return self.positions[act.squeeze(1).to(torch.long)]
        return act[:, 0]

    @torch.jit.export
    def weights(self, obs: torch.Tensor) -> torch.Tensor:
        if self.mode == "discrete":
            return torch.softmax(self._out(obs), dim=1)
        p = self.forward(obs)
        return torch.stack([1.0 - torch.abs(p), torch.clamp(p, min=0.0), torch.clamp(-p, min=0.0)], dim=1)


def rebuild(recipe: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> PolicyNet:
    net = PolicyNet(**recipe)
    net.load_state_dict(state, strict=True)
    return net.eval()


def _linears(seq: nn.Sequential) -> tuple[list[nn.Linear], str | None]:
    linears = [m for m in seq if isinstance(m, nn.Linear)]
    acts = {type(m).__name__.lower() for m in seq if not isinstance(m, nn.Linear)}
    unknown = acts - set(ACTIVATIONS) - {"identity"}
    if unknown:
        raise ValueError(f"policy export: unsupported layer(s) {sorted(unknown)} in {seq}")
    return linears, (sorted(acts - {"identity"}) or [None])[0]


def policy_module(model: BaseAlgorithm) -> PolicyNet:
    """The SB3 model's deterministic actor as a PolicyNet with copied weights (CPU, float32, eval)."""
    policy = model.policy
    if hasattr(policy, "mlp_extractor"):  # PPO (ActorCriticPolicy)
        body, activation = _linears(policy.mlp_extractor.policy_net)
        head = policy.action_net
        mode = "discrete" if model.action_space.__class__.__name__ == "Discrete" else "gaussian"
    elif hasattr(policy.actor, "latent_pi"):  # SAC
        body, activation = _linears(policy.actor.latent_pi)
        head, mode = policy.actor.mu, "squashed"
    else:  # TD3: mu = Sequential(Linear, act, ..., Linear, Tanh)
        linears, activation = _linears(policy.actor.mu[:-1])
        body, head, mode = linears[:-1], linears[-1], "squashed"
    net = PolicyNet(
        head.in_features if not body else body[0].in_features,
        [m.out_features for m in body],
        activation or "relu",
        head.out_features,
        mode,
    )
    with torch.no_grad():
        for mine, theirs in zip([m for m in net.body if isinstance(m, nn.Linear)], body, strict=True):
            mine.weight.copy_(theirs.weight.detach().cpu())
            mine.bias.copy_(theirs.bias.detach().cpu())
        net.head.weight.copy_(head.weight.detach().cpu())
        net.head.bias.copy_(head.bias.detach().cpu())
    return net.float().eval()


# -- TorchScript bytes (fresh interpreter) -------------------------------------------------------------------
_EXPORT_CHILD = """
import importlib
import sys
import torch
from workflow_scripts.models.torch_models import script_module
torch.set_num_threads(1)
module, function = sys.argv[1].split(":")
data = torch.load(sys.argv[2], map_location="cpu", weights_only=True)
net = getattr(importlib.import_module(module), function)(data["recipe"], data["state"])
torch.jit.save(script_module(net), sys.argv[3])
"""


def fresh_script_bytes(net: nn.Module, rebuild_ref: str, what: str) -> bytes:
    """TorchScript bytes of `net` (with `recipe()`), scripted and saved in a fresh interpreter with
    PYTHONHASHSEED=0 so the same weights give the same bytes in any process (as models/torch_models.py does
    for the swing heads). `rebuild_ref` = "module:function" rebuilding the module from (recipe, state)."""
    net = copy.deepcopy(net).cpu().float().eval()
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="swingflow-export-") as tmp:
        src, out = Path(tmp) / "in.pt", Path(tmp) / "out.pt"
        torch.save({"recipe": net.recipe(), "state": net.state_dict()}, src)
        done = subprocess.run(
            [sys.executable, "-c", _EXPORT_CHILD, rebuild_ref, str(src), str(out)],
            capture_output=True,
            env=dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=path),
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace")[-2000:]
            raise RuntimeError(f"{what} TorchScript export failed: {error}")
        return out.read_bytes()


def policy_bytes(model: BaseAlgorithm) -> bytes:
    return fresh_script_bytes(policy_module(model), f"{__name__}:rebuild", "agent policy")


# -- parity --------------------------------------------------------------------------------------------------
def observations(model: BaseAlgorithm, env: TradingEnv) -> np.ndarray:
    """The observations the deterministic policy visits over the env's segment (real position states)."""
    obs, _ = env.reset(seed=0)
    seen, done = [obs], False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, done, truncated, _ = env.step(action)
        done = done or truncated
        if not done:
            seen.append(obs)
    return np.asarray(seen, dtype=np.float32)


def _sb3_probabilities(model: BaseAlgorithm, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        tensor, _ = model.policy.obs_to_tensor(obs)
        return model.policy.get_distribution(tensor).distribution.probs.cpu().numpy()


def parity(model: BaseAlgorithm, data: bytes, obs: np.ndarray) -> dict:
    """Compare SB3's deterministic predict with the TorchScript file on `obs`; raises above PARITY_ATOL.
    Returns {n_observations, max_abs_diff, actions_equal (share), tolerance}."""
    scripted = load_scripted(data)
    obs = np.asarray(obs, dtype=np.float32)
    sb3_action, _ = model.predict(obs, deterministic=True)
    with torch.no_grad():
        mine = scripted.action(torch.from_numpy(obs)).numpy()
        weights = scripted.weights(torch.from_numpy(obs)).numpy()
    discrete = scripted.mode == "discrete"
    if discrete:
        theirs = np.asarray(sb3_action).reshape(-1)
        diff = float(np.max(np.abs(_sb3_probabilities(model, obs) - weights))) if len(obs) else 0.0
        with torch.no_grad():
            logits = scripted.head(scripted.body(torch.from_numpy(obs))).numpy()
        top2 = np.sort(logits, axis=1)[:, -2:]
        clear = (top2[:, 1] - top2[:, 0]) > PARITY_ATOL
        equal = mine.reshape(-1).astype(np.int64) == theirs
        ok = bool(np.all(equal[clear]))
    else:
        theirs = np.clip(np.asarray(sb3_action, dtype=np.float64).reshape(len(obs), -1), -1.0, 1.0)
        diff = float(np.max(np.abs(mine - theirs))) if len(obs) else 0.0
        equal = np.abs(mine - theirs).max(axis=1) <= PARITY_ATOL
        ok = True
    if diff > PARITY_ATOL or not ok:
        raise AssertionError(
            f"agent policy TorchScript parity: max |diff| {diff} (tolerance {PARITY_ATOL}), "
            f"{int((~equal).sum())} of {len(obs)} actions differ"
        )
    return {
        "n_observations": len(obs),
        "max_abs_diff": diff,
        "actions_equal": float(np.mean(equal)) if len(obs) else 1.0,
        "tolerance": PARITY_ATOL,
    }
