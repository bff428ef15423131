"""Stage 2 agents: stable-baselines3 PPO (default), SAC and TD3 through one interface, scored with the
project's own trade metrics.

    train_agent(env_train, params, seed) -> model        fit on the train segment's environment
    score_on_validation(model, env_val, ...) -> result   the deterministic policy over the validation segment
    score_segment(model, env, ...) -> result             the same on any segment (the test, once)

SAC and TD3 act on a continuous position in [-1, 1] (`EnvSettings(continuous=True)`); PPO takes either action
space. Determinism: with the same seed, parameters and environment, training on the CPU gives the same weights
and the same actions (SB3 seeds python, numpy and torch; `threads` pins torch's intra-op threads, 1 by
default, because a different thread count changes float summation order). A CUDA device is used only when
asked for (`device: auto` picks cuda, then mps, then cpu, models/torch_models.py `select_device`); small MLP
policies are usually faster on the CPU.

A result holds `after_costs` (evaluation/metrics.py `trading_metrics` on the episode's net bar returns and net
trade returns), `sharpe_tests` (PSR and the DSR counting `n_trials`, evaluation/backtest.py `sharpe_tests`),
`grade` (evaluation/grades.py `grade_metric`), `gate` when a profile is given (evaluation/gates.py `judge`),
so an agent is judged by the same numbers as a swing classifier."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.noise import NormalActionNoise

from workflow_scripts.agents.environment import TradingEnv
from workflow_scripts.evaluation import metrics as M
from workflow_scripts.evaluation.backtest import sharpe_tests
from workflow_scripts.evaluation.gates import judge
from workflow_scripts.evaluation.grades import grade_metric
from workflow_scripts.models.torch_models import select_device

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC, "td3": TD3}
CONTINUOUS_ONLY = ("sac", "td3")


@dataclass(frozen=True)
class AgentParams:
    """One agent's hyperparameters: config group `agents.agent` (config/agents/ppo.yaml, the one home of the
    values) with the kind from the rule and the tuned net_width, batch_size, learning_rate, gamma on top.
    n_steps: PPO's rollout length per update; learning_starts: SAC / TD3's random steps before the first
    update; action_noise: TD3's std of the Gaussian exploration noise."""

    kind: str
    net_width: int
    n_layers: int
    batch_size: int
    learning_rate: float
    gamma: float
    total_timesteps: int
    n_steps: int
    learning_starts: int
    action_noise: float
    device: str
    threads: int

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> AgentParams:
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - set(cls.__dataclass_fields__))
        missing = sorted(set(cls.__dataclass_fields__) - set(cfg))
        if unknown or missing:
            raise ValueError(
                f"agent params: unknown key(s) {unknown}, missing key(s) {missing}; "
                f"expected: {sorted(cls.__dataclass_fields__)}"
            )
        if cfg["kind"] not in ALGORITHMS:
            raise ValueError(f"agent kind must be one of {list(ALGORITHMS)}, got {cfg['kind']!r}")
        params = cls(**cfg)
        if min(params.net_width, params.n_layers, params.batch_size, params.total_timesteps) < 1:
            raise ValueError("agent params: net_width, n_layers, batch_size, total_timesteps must be >= 1")
        if not 0 < params.gamma < 1 or not params.learning_rate > 0:
            raise ValueError("agent params: gamma must be in (0, 1) and learning_rate > 0")
        return params

    def to_dict(self) -> dict:
        return asdict(self)


def _model_kwargs(params: AgentParams, env: TradingEnv) -> dict:
    kwargs: dict[str, Any] = {
        "learning_rate": params.learning_rate,
        "gamma": params.gamma,
        "policy_kwargs": {"net_arch": [params.net_width] * params.n_layers},
    }
    if params.kind == "ppo":
        n_steps = max(2, min(params.n_steps, params.total_timesteps))
        # PPO splits each rollout into minibatches: a batch larger than the rollout would be truncated anyway.
        return kwargs | {"n_steps": n_steps, "batch_size": min(params.batch_size, n_steps)}
    kwargs |= {
        "batch_size": params.batch_size,
        "buffer_size": max(params.total_timesteps, 1),
        "learning_starts": min(params.learning_starts, params.total_timesteps),
    }
    if params.kind == "td3":
        n = env.action_space.shape[0]
        kwargs["action_noise"] = NormalActionNoise(np.zeros(n), params.action_noise * np.ones(n))
    return kwargs


def train_agent(env_train: TradingEnv, params: AgentParams | Mapping[str, Any], seed: int) -> BaseAlgorithm:
    """Fit one agent on the train segment's environment; deterministic for a seed on the CPU."""
    params = params if isinstance(params, AgentParams) else AgentParams.from_mapping(params)
    if params.kind in CONTINUOUS_ONLY and not isinstance(env_train.action_space, spaces.Box):
        raise ValueError(f"{params.kind} needs a continuous position: build the env with continuous: true")
    torch.set_num_threads(int(params.threads))
    device = select_device(params.device)
    model = ALGORITHMS[params.kind](
        "MlpPolicy", env_train, seed=int(seed), device=device, verbose=0, **_model_kwargs(params, env_train)
    )
    # A logger with no outputs: SB3's default one creates a tempdir/SB3-<time> folder per fit and never
    # removes it; the job's log already holds what matters.
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.learn(total_timesteps=int(params.total_timesteps), progress_bar=False)
    return model


def run_policy(model: BaseAlgorithm, env: TradingEnv) -> dict:
    """One episode of the deterministic policy over the env's whole segment; the env's ledger."""
    if env.settings.episode_bars is not None:
        raise ValueError("scoring runs the whole segment: build the scoring env with episode_bars: null")
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, done, truncated, _ = env.step(action)
        done = done or truncated
    return env.ledger()


def score_segment(
    model: BaseAlgorithm,
    env: TradingEnv,
    *,
    n_trials: int = 1,
    trial_sharpes: Sequence[float] | None = None,
    grades: Mapping[str, Any],
    gate_profile: Mapping[str, Any] | None = None,
) -> dict:
    """The policy's after-cost metrics, Sharpe tests, grade (and gate verdict) on the env's segment."""
    ledger = run_policy(model, env)
    bars, trades = ledger["bar_returns"], ledger["trade_returns"]
    after = M.trading_metrics(bars, trades, ledger["held_bars"])
    tests = sharpe_tests(trades, n_trials, trial_sharpes)
    after["psr"], after["dsr"] = tests["psr"], tests["dsr"]
    positions = ledger["positions"]
    result = {
        "segment": {"lo": env.lo, "hi": env.hi, "n_steps": len(bars)},
        "after_costs": after,
        "sharpe_tests": tests,
        "grade": grade_metric(after, grades),
        "counts": {
            "n_trades": len(trades),
            "long_bars": int(np.sum(positions > 0)),
            "short_bars": int(np.sum(positions < 0)),
            "flat_bars": int(np.sum(positions == 0)),
        },
        "positions_sha256": hashlib.sha256(np.ascontiguousarray(positions).tobytes()).hexdigest(),
    }
    if gate_profile is not None:
        result["gate"] = judge(after, gate_profile)
    return result


def score_on_validation(model: BaseAlgorithm, env_val: TradingEnv, **judging: Any) -> dict:
    """`score_segment` on the validation environment (the only segment a trial is ever scored on)."""
    return score_segment(model, env_val, **judging) | {"scored_on": "validation"}
