"""Optuna studies of agent hyperparameters, scored on the validation segment only.

One study per (symbol, agent kind), in a journal file (training/tuning.py `run_stage`: journal storage,
budgets counted over reruns, resume, stale-trial recovery; `suggest_params`: the project's space format). A
trial:

    sample net_width, batch_size, learning_rate, gamma (the agent) and lookback, time_decay (the env)
    train the agent on the TRAIN segment's env (seed fixed: a trial's result is a function of its params)
    run the deterministic policy over the VALIDATION segment's env, score it with the project's trade metrics
    value = the after-cost `objective` (default sharpe_per_trade, the grades' basis) when the policy made at
            least `min_trades` trades, else NO_SCORE (a policy that never trades has no Sharpe to compare)

The test segment is never read here. The TPE sampler's seed is fixed (`seed`, moved on by the trial count on
resume, as the supervised studies do), so a study with the same budget samples the same trials.

`study_summary` turns the study into a plain-JSON result: every trial with its validation metrics and its seed
004 trial code (trial_code.py, collisions suffixed), the best trial, and the trials' per-trade Sharpes and
count that the test evaluation's DSR deflates by."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from workflow_scripts.agents import trial_code
from workflow_scripts.agents.agents import AgentParams, score_on_validation, train_agent
from workflow_scripts.agents.environment import EnvSettings, MarketData, TradingEnv
from workflow_scripts.evaluation.costs import SymbolCosts
from workflow_scripts.training.tuning import open_study, run_stage, suggest_params

NO_SCORE = -1e9  # finite (Optuna's TPE needs finite values); far below any Sharpe a trading policy can reach
AGENT_KEYS = ("net_width", "batch_size", "learning_rate", "gamma")
ENV_KEYS = ("lookback", "time_decay")
STUDY_KEYS = ("trials", "minutes", "seed", "sampler", "objective", "min_trades", "stale_after_s")


@dataclass(frozen=True)
class StudySetup:
    """Everything a trial needs besides its sampled parameters. `env` and `agent` are the config groups
    `agents.env` / `agents.agent` (every key: the sampled ones replace theirs); `objective` and `min_trades`
    come from `agents.study`; `date` is the trial codes' DATE."""

    data: MarketData
    train: tuple[int, int]
    validation: tuple[int, int]
    costs: SymbolCosts
    kind: str
    env: Mapping[str, Any]
    agent: Mapping[str, Any]
    seed: int
    objective: str
    min_trades: int
    grades: Mapping[str, Any]
    date: str
    code_prefix: str = ""  # the trial codes' TYPE is code_prefix + KIND ("H": the hybrid, HPPO)

    def settings(self, sampled: Mapping[str, Any], *, scoring: bool = False) -> EnvSettings:
        base = dict(self.env) | {k: sampled[k] for k in ENV_KEYS if k in sampled}
        if scoring:  # the whole validation segment in one episode
            base["episode_bars"] = None
        return EnvSettings.from_mapping(base)

    def params(self, sampled: Mapping[str, Any]) -> AgentParams:
        return AgentParams.from_mapping(
            dict(self.agent) | {"kind": self.kind} | {k: sampled[k] for k in AGENT_KEYS if k in sampled}
        )


def evaluate_trial(setup: StudySetup, sampled: Mapping[str, Any]) -> tuple[float, dict]:
    """Train on train, score on validation: (objective value, validation result)."""
    env_train = TradingEnv(setup.data, setup.train, setup.costs, setup.settings(sampled))
    model = train_agent(env_train, setup.params(sampled), setup.seed)
    env_val = TradingEnv(setup.data, setup.validation, setup.costs, setup.settings(sampled, scoring=True))
    result = score_on_validation(model, env_val, grades=setup.grades)
    after = result["after_costs"]
    value = after.get(setup.objective)
    ok = value is not None and math.isfinite(value) and after["n_trades"] >= setup.min_trades
    return (float(value) if ok else NO_SCORE), result


def make_objective(setup: StudySetup, space: Mapping[str, Any]):
    def objective(trial: optuna.Trial) -> float:
        # who runs the trial: training/tuning.py's stale-trial recovery reads host and pid
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        sampled = suggest_params(trial, dict(space))
        value, result = evaluate_trial(setup, sampled)
        after = result["after_costs"]
        trial.set_user_attr(
            "validation",
            {
                k: after.get(k)
                for k in ("sharpe", "sharpe_per_trade", "total_return", "max_drawdown", "n_trades")
            }
            | {"grade": result["grade"]["grade"]},
        )
        return value

    return objective


def run_agent_study(
    setup: StudySetup, *, journal_path, study_name: str, space: Mapping[str, Any], study: Mapping[str, Any]
) -> dict:
    """Run or resume one agent study until its budget binds; return `study_summary`. `study` is the config
    group `agents.study` (trials, minutes, seed, sampler, stale_after_s; objective and min_trades are the
    setup's)."""
    space = dict(space)
    unknown = sorted(set(space) - set(AGENT_KEYS) - set(ENV_KEYS))
    if unknown:
        raise ValueError(
            f"agent study space: unknown parameter(s) {unknown}; tunable: {AGENT_KEYS + ENV_KEYS}"
        )
    missing = [k for k in STUDY_KEYS if k not in study]
    if missing:
        raise ValueError(f"agent study: missing key(s) {missing} of agents.study")
    minutes = study["minutes"]
    run_stage(
        journal_path=journal_path,
        study_name=study_name,
        objective=make_objective(setup, space),
        n_trials=study["trials"],
        timeout_s=None if minutes is None else 60.0 * float(minutes),
        seed=int(study["seed"]),
        sampler=study["sampler"],
        pruner_cfg={"kind": "none"},
        stale_after_s=float(study["stale_after_s"]),
    )
    opened = open_study(journal_path, study_name, seed=int(study["seed"]), sampler=study["sampler"])
    return study_summary(opened, setup, budget={"trials": study["trials"], "minutes": minutes})


def code_fields(setup: StudySetup, sampled: Mapping[str, Any], grade: str) -> dict:
    """Seed 004's fields of one trial (unsampled ones from the fixed settings)."""
    params, settings = setup.params(sampled), setup.settings(sampled)
    return {
        "type": setup.code_prefix + params.kind.upper(),
        "grade": grade,
        "net_width": params.net_width,
        "batch_size": params.batch_size,
        "learning_rate": params.learning_rate,
        "gamma": params.gamma,
        "lookback": settings.lookback,
        "time_decay": settings.time_decay,
        "date": setup.date,
    }


def study_summary(study: optuna.Study, setup: StudySetup, budget: Mapping[str, Any] | None = None) -> dict:
    """Plain JSON: trials (number, params, value, validation metrics, trial code), best trial, DSR inputs."""
    complete = sorted(
        (t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE),
        key=lambda t: t.number,
    )
    pairs = [
        (
            code_fields(setup, t.params, t.user_attrs["validation"]["grade"]),
            {"study": study.study_name, "trial": t.number, "params": t.params},
        )
        for t in complete
    ]
    codes = trial_code.assign_codes(pairs)
    trials = [
        {
            "number": t.number,
            "code": code,
            "value": t.value,
            "params": t.params,
            "validation": t.user_attrs["validation"],
        }
        for t, code in zip(complete, codes)
    ]
    scored = [t for t in trials if t["value"] > NO_SCORE]
    # Ties -> the earlier trial: deterministic and independent of dict order.
    best = max(scored, key=lambda t: (t["value"], -t["number"])) if scored else None
    return {
        "study_name": study.study_name,
        "kind": setup.kind,
        "objective": setup.objective,
        "min_trades": setup.min_trades,
        "scored_on": "validation",
        "budget": dict(budget or {}),
        "n_trials": len(trials),
        "trial_sharpes": [t["validation"]["sharpe_per_trade"] for t in trials],
        "best": best,
        "trials": trials,
    }
