"""Benchmark: the agents' trading environment and stable-baselines3 training on the demo data (CPU; PPO on
CUDA too when it is available).

    python benchmarks/agents.py [--timesteps 4096] [--env-steps 20000] [--threads 1] [--out FILE.json]

Data: data/raw/BTCUSDT_1h.parquet, features from workflow_scripts.features.build_features with a small spec
(tech + vol, lookbacks 5/21/55), standardised with the train segment's statistics, chronological split
60/20/20 with a 24-bar embargo, the default cost table's BTCUSDT costs.

Reports: environment steps per second (random discrete actions, lookback 5), PPO training timesteps per second
(net 64 x 2, n_steps 512, batch 64), the cost of one agent trial (train `--timesteps` on the train segment
+ score the validation segment) in seconds, and what the chosen policy costs on top: its TorchScript export
(a fresh interpreter) and the parity check on the validation observations, and scoring one ensemble candidate
(three members) over the validation segment. A real study runs `trials` of these; the demo default budget is
sized for minutes, a real run wants 10^5 - 10^6 timesteps per trial (docs/AGENTS.md). Settings not named here
are config/agents/ppo.yaml's."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workflow_scripts.agents import export
from workflow_scripts.agents.agents import AgentParams, score_segment, train_agent
from workflow_scripts.agents.ensemble import EnsemblePolicy, Member, ensemble_settings
from workflow_scripts.agents.environment import EnvSettings, TradingEnv, market_data, standardise
from workflow_scripts.agents.tuning import StudySetup, evaluate_trial
from workflow_scripts.config.schema import config_group
from workflow_scripts.data import splits
from workflow_scripts.evaluation.costs import ConfigCostProvider
from workflow_scripts.features import build_features

SPEC = {"families": ["tech", "vol"], "lookbacks": [5, 21, 55], "lags": [], "dtype": "float32"}
AGENTS = config_group("agents", "ppo")


def settings(**over) -> EnvSettings:
    return EnvSettings.from_mapping(AGENTS["env"] | {"episode_bars": None} | over)


def load_demo():
    bars = pd.read_parquet(REPO / "data" / "raw" / "BTCUSDT_1h.parquet")
    table = build_features(bars, SPEC)
    split = splits.chronological_split(table["timestamp"], 10, 0.6, 0.2, 24)
    seg = {s: (split[s]["lo"], split[s]["hi"]) for s in ("train", "validation", "test")}
    x, _ = standardise(table.drop(columns="timestamp").to_numpy(dtype=np.float64), seg["train"])
    data = market_data(x, bars["close"].to_numpy(), bars["timestamp"])
    table_cfg = yaml.safe_load((REPO / "config" / "costs" / "default.yaml").read_text())
    costs = ConfigCostProvider({k: v for k, v in table_cfg.items() if k != "name"}).costs_for("BTCUSDT")
    return data, seg, costs


def env_steps_per_second(data, seg, costs, n_steps: int) -> float:
    env = TradingEnv(data, seg["train"], costs, settings(lookback=5))
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 3, n_steps)
    start = time.perf_counter()
    for a in actions:
        _, _, done, _, _ = env.step(a)
        if done:
            env.reset()
    return n_steps / (time.perf_counter() - start)


def ppo_timesteps_per_second(data, seg, costs, timesteps: int, device: str) -> float:
    env = TradingEnv(data, seg["train"], costs, settings(lookback=5, episode_bars=1024))
    params = AGENTS["agent"] | {"kind": "ppo", "total_timesteps": timesteps, "n_steps": 512, "batch_size": 64}
    params |= {"net_width": 64, "n_layers": 2, "device": device}
    start = time.perf_counter()
    train_agent(env, params, seed=0)
    return timesteps / (time.perf_counter() - start)


def trial_seconds(data, seg, costs, timesteps: int) -> tuple[float, dict]:
    setup = StudySetup(
        data=data,
        train=seg["train"],
        validation=seg["validation"],
        costs=costs,
        kind="ppo",
        env=AGENTS["env"] | {"episode_bars": 1024},
        agent=AGENTS["agent"] | {"total_timesteps": timesteps, "n_steps": 512},
        seed=0,
        objective=AGENTS["study"]["objective"],
        min_trades=0,
        grades=config_group("grades"),
        date="20260101",
    )
    start = time.perf_counter()
    value, result = evaluate_trial(setup, {"net_width": 64, "batch_size": 64, "lookback": 5})
    return time.perf_counter() - start, {"value": value, "n_trades": result["after_costs"]["n_trades"]}


def export_and_ensemble_seconds(data, seg, costs, timesteps: int) -> dict:
    """The chosen policy's TorchScript export and parity check, and one 3-member ensemble candidate scored
    over the validation segment (members: PPO trials with lookbacks 1, 5, 10)."""
    members, model = [], None
    for i, lookback in enumerate((1, 5, 10)):
        env = TradingEnv(data, seg["train"], costs, settings(lookback=lookback, episode_bars=1024))
        params = AgentParams.from_mapping(AGENTS["agent"] | {"kind": "ppo", "total_timesteps": timesteps})
        model = train_agent(env, params, seed=i)
        members.append(Member(f"M{i}", "ppo", i, 0.0, lookback, export.policy_module(model)))
    start = time.perf_counter()
    data_bytes = export.policy_bytes(model)
    exported = time.perf_counter() - start
    obs = export.observations(model, TradingEnv(data, seg["validation"], costs, settings(lookback=10)))
    start = time.perf_counter()
    export.parity(model, data_bytes, obs)
    checked = time.perf_counter() - start
    policy = EnsemblePolicy(members, "positions", data.features.shape[1])
    env = TradingEnv(data, seg["validation"], costs, ensemble_settings(AGENTS["env"], policy.lookback))
    start = time.perf_counter()
    score_segment(policy, env, grades=config_group("grades"))
    return {
        "export_seconds": exported,
        "parity_seconds": checked,
        "parity_observations": len(obs),
        "ensemble_candidate_seconds": time.perf_counter() - start,
        "validation_bars": seg["validation"][1] - seg["validation"][0],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timesteps", type=int, default=4096)
    ap.add_argument("--env-steps", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    data, seg, costs = load_demo()
    out = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu": platform.processor(),
        },
        "bars": len(data.close),
        "features": data.features.shape[1],
        "env_steps_per_s": env_steps_per_second(data, seg, costs, args.env_steps),
        "ppo_timesteps_per_s": {"cpu": ppo_timesteps_per_second(data, seg, costs, args.timesteps, "cpu")},
    }
    if torch.cuda.is_available():
        out["ppo_timesteps_per_s"]["cuda"] = ppo_timesteps_per_second(
            data, seg, costs, args.timesteps, "cuda"
        )
    seconds, trial = trial_seconds(data, seg, costs, args.timesteps)
    out["trial"] = {"timesteps": args.timesteps, "seconds": seconds, **trial}
    out["chosen_policy"] = export_and_ensemble_seconds(data, seg, costs, args.timesteps)
    print(json.dumps(out, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
