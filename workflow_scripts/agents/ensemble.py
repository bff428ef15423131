"""Stage 4: an ensemble of the symbol's agent trials, chosen on validation only.

Members: the top-k scored trials of the symbol over every agent kind, ranked by their validation objective
(ties: kind order, then trial number). Candidates: k = 1 .. `max_members` times the combination `methods`:

    positions       the mean of the members' deterministic positions (a continuous position in [-1, 1])
    probabilities   the mean of the members' (flat, long, short) action weights (export.PolicyNet.weights: a
                    discrete policy's action probabilities, a continuous position p as (1 - |p|, p+, p-)),
                    then the position of the largest weight (flat 0 / long 1 / short -1)

Every member observes the SAME state as the ensemble acts in: its own `lookback` rows of the features (the
last rows of the ensemble env's window, whose lookback is the members' largest) plus the ensemble's position
state (position, unrealised return, bars in trade). So a member is asked "what would you hold now, given
where the ensemble stands", as a committee would be; k = 1 with `positions` is the best trial itself.

Each candidate runs over the VALIDATION segment in one episode and is scored like a trial (tuning.py: the
objective after costs when it made at least `min_trades` trades, else NO_SCORE); the best candidate (ties:
fewer members, then method order) is the ensemble. Nothing here reads a bar of the test segment: the data may
extend past validation, but only [validation.lo, validation.hi) is stepped (tested by perturbing the test
bars). The test evaluation (jobs.evaluate_agent_ensemble) runs the chosen ensemble once."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from workflow_scripts.agents.agents import score_segment
from workflow_scripts.agents.environment import (
    DISCRETE_POSITIONS,
    EnvSettings,
    MarketData,
    TradingEnv,
)
from workflow_scripts.agents.tuning import NO_SCORE
from workflow_scripts.evaluation.costs import SymbolCosts
from workflow_scripts.models.kinds import observation_slice

METHODS = ("positions", "probabilities")


@dataclass
class Member:
    """One trial's policy: `net` maps observations (B, lookback * F + N_STATE) to positions (forward) and
    (flat, long, short) weights (`weights`), eager export.PolicyNet or its TorchScript."""

    code: str
    kind: str
    number: int
    value: float
    lookback: int
    net: Any


class EnsemblePolicy:
    """`predict(obs, deterministic=True)` like an SB3 model (agents.run_policy drives it), on an env whose
    lookback is the members' largest and whose action is a continuous position."""

    def __init__(self, members: Sequence[Member], method: str, n_features: int):
        if method not in METHODS:
            raise ValueError(f"agent ensemble: method must be one of {METHODS}, got {method!r}")
        if not members:
            raise ValueError("agent ensemble: no members")
        self.members, self.method, self.n_features = list(members), method, int(n_features)
        self.lookback = max(m.lookback for m in self.members)

    def member_observation(self, obs: np.ndarray, lookback: int) -> np.ndarray:
        """A member's observation from the ensemble env's: its last `lookback` feature rows + the state
        (models/kinds.py `observation_slice`, which the registry's agent_ensemble predictor uses too)."""
        return observation_slice(obs, self.lookback, lookback, self.n_features)

    def _tensor(self, obs: np.ndarray, member: Member):
        return torch.from_numpy(np.ascontiguousarray(self.member_observation(obs, member.lookback)))

    def position(self, obs: np.ndarray) -> float:
        obs = np.asarray(obs, dtype=np.float32).reshape(1, -1)
        with torch.no_grad():
            if self.method == "positions":
                out = [
                    float(m.net(torch.from_numpy(self.member_observation(obs, m.lookback)))[0])
                    for m in self.members
                ]
                return float(np.clip(np.mean(out), -1.0, 1.0))
            weights = [m.net.weights(self._tensor(obs, m))[0].numpy() for m in self.members]
        return DISCRETE_POSITIONS[int(np.argmax(np.mean(weights, axis=0)))]

    def predict(self, obs, deterministic: bool = True):
        return np.array([self.position(obs)], dtype=np.float32), None


def ensemble_settings(env: Mapping[str, Any], lookback: int) -> EnvSettings:
    """The scoring env of an ensemble: the config env with the members' largest lookback, a continuous
    position and the whole segment as one episode (time_decay and drawdown_penalty shape rewards only)."""
    return EnvSettings.from_mapping(
        dict(env) | {"lookback": int(lookback), "continuous": True, "episode_bars": None}
    )


def ranked_trials(studies: Sequence[Mapping[str, Any]], kinds: Sequence[str]) -> list[dict]:
    """Every scored trial of the studies, best validation value first (ties: kind order, trial number)."""
    order = {k: i for i, k in enumerate(kinds)}
    rows = [
        dict(t) | {"kind": s["kind"]}
        for s in studies
        for t in s["trials"]
        if t["value"] is not None and t["value"] > NO_SCORE
    ]
    return sorted(rows, key=lambda t: (-t["value"], order[t["kind"]], t["number"]))


def candidate_value(result: Mapping[str, Any], objective: str, min_trades: int) -> float:
    after = result["after_costs"]
    value = after.get(objective)
    ok = value is not None and math.isfinite(value) and after["n_trades"] >= min_trades
    return float(value) if ok else NO_SCORE


def choose_on_validation(
    members: Sequence[Member],
    data: MarketData,
    validation: tuple[int, int],
    costs: SymbolCosts,
    *,
    env: Mapping[str, Any],
    max_members: int,
    methods: Sequence[str],
    objective: str,
    min_trades: int,
    grades: Mapping[str, Any],
) -> dict:
    """Score every candidate (k, method) on the validation segment; {chosen: {k, method, value}, candidates}.
    `members` are ranked best first (ranked_trials order)."""
    n_features = data.features.shape[1]
    candidates = []
    for k in range(1, min(int(max_members), len(members)) + 1):
        for method in methods:
            policy = EnsemblePolicy(members[:k], method, n_features)
            scoring = TradingEnv(data, validation, costs, ensemble_settings(env, policy.lookback))
            result = score_segment(policy, scoring, grades=grades)
            after = result["after_costs"]
            candidates.append(
                {
                    "k": k,
                    "method": method,
                    "members": [m.code for m in members[:k]],
                    "value": candidate_value(result, objective, min_trades),
                    "validation": {
                        key: after.get(key)
                        for key in ("sharpe", "sharpe_per_trade", "total_return", "max_drawdown", "n_trades")
                    }
                    | {"grade": result["grade"]["grade"]},
                }
            )
    scored = [c for c in candidates if c["value"] > NO_SCORE]
    if not scored:
        raise ValueError(f"agent ensemble: no candidate reached {min_trades} validation trades")
    best = max(scored, key=lambda c: (c["value"], -c["k"], -list(methods).index(c["method"])))
    return {"chosen": best, "candidates": candidates, "objective": objective, "scored_on": "validation"}
