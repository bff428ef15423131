"""One deterministic policy stepped through a TradingEnv, bar by bar: the replay that the validation evidence
of a packaged agent (here), its paper ledger (paper.py) and its predicted positions (registry/predictions.py)
share, so the three read the same positions, returns and trades.

A policy maps one observation (float32 (D,)) to the action TradingEnv takes: the exported TorchScript
`action` of an agent or hybrid (paper.scripted_policy), or an ensemble's position (ensemble.EnsemblePolicy).

Time line (environment.py): the step at bar t chooses the position at close t from bars <= t; its net return
runs from close t to close t + 1, so it is stamped with bar t + 1, the bar whose close realises it. A trade
entered at close t_e and closed at close t_x (or liquidated at the segment's last bar) moves the returns
stamped t_e + 1 .. t_x + 1, which are its entry and exit stamps in the evidence.

Validation evidence (`evidence_document`, the supervised line's EVIDENCE_FILE format, evaluation/evidence.py):
the policy over one segment of bars it was chosen on, never trained on (the base agents and the ensemble: the
validation segment; the hybrid, which trains on the first part of validation: the rest of it), as per-bar
after-cost simple returns with the same metrics, DSR and gate verdict as its test evaluation. The registry
reads it like a swing classifier's (store.read_evidence, validation_summary, eligibility; lifecycle/compare.py
on the bars two candidates share)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workflow_scripts.agents.environment import TradingEnv
from workflow_scripts.evaluation import metrics as M
from workflow_scripts.evaluation.backtest import sharpe_tests
from workflow_scripts.evaluation.evidence import epoch_seconds
from workflow_scripts.evaluation.gates import judge

# policy(obs float32 (D,)) -> the action TradingEnv takes (index or position)
Policy = Callable[[np.ndarray], Any]


@dataclass
class Replay:
    """What one replay recorded, per step at bar t (in order): `bars` t, `positions` (chosen at close t),
    `returns` (net simple, close t -> t + 1, costs and, on the segment's last step, the liquidation
    included); `trades` (entry bar, exit bar, direction +1/-1, net return, the step t that booked the exit)
    of the trades closed by those steps (exit bar: the close that closed it, t + 1 for the liquidation);
    `next_obs` the observation after the last step; `ledger` the env's ledger (what the metrics read)."""

    bars: np.ndarray
    positions: np.ndarray
    returns: np.ndarray
    trades: list[tuple[int, int, int, float, int]]
    next_obs: np.ndarray
    ledger: dict


def replay(policy: Policy, env: TradingEnv, stop: int | None = None) -> Replay:
    """Step `policy` from the env's first bar (flat) through bar `stop` - 1 (default: to the segment's end,
    where the last step liquidates an open position). The env must run its whole segment as one episode."""
    if env.settings.episode_bars is not None:
        raise ValueError("a replay runs the whole segment: build the env with episode_bars: null")
    obs, _ = env.reset(seed=0)
    last = env.hi - 1 if stop is None else int(stop)
    if not env.lo <= last <= env.hi - 1:
        raise ValueError(f"replay: stop {stop} outside the segment [{env.lo}, {env.hi})")
    bars, trades = [], []
    for t in range(env.lo, last):
        before_pos, before_entry = env._pos, env._entry_bar
        closed_before = len(env._trade_returns)
        obs, _, done, _, info = env.step(policy(obs))
        bars.append(t)
        closed = env._trade_returns[closed_before:]
        liquidated = done and info["position"] != 0
        for i, net in enumerate(closed):
            if liquidated and i == len(closed) - 1:  # the open trade, liquidated at the last bar
                entry, exit_, direction = env._entry_bar, t + 1, np.sign(info["position"])
            else:  # closed (reversed or reduced to flat) at close t
                entry, exit_, direction = before_entry, t, np.sign(before_pos)
            trades.append((int(entry), int(exit_), int(direction), float(net), t))
        if done and t != last - 1:
            raise AssertionError("replay: the episode ended before its last step")
    ledger = env.ledger()
    return Replay(
        np.asarray(bars, dtype=np.int64), ledger["positions"], ledger["bar_returns"], trades, obs, ledger
    )


def evidence_document(
    policy: Policy,
    env: TradingEnv,
    timestamps,
    *,
    gate_profile: Mapping[str, Any],
    n_trials: int,
    trial_sharpes: Sequence[float] | None,
    chosen_on: str,
) -> dict:
    """The validation evidence of `policy` on the env's segment [lo, hi) (the whole episode, liquidation
    included, as its validation score): EVIDENCE_FILE's keys, returns stamped t + 1 (bars lo + 1 .. hi - 1),
    trades by the stamps of the returns they move, the after-cost metrics with the DSR over `n_trials`
    (every configuration tried for this choice) and the gate verdict on them."""
    rec = replay(policy, env)
    ledger = rec.ledger
    after = M.trading_metrics(ledger["bar_returns"], ledger["trade_returns"], ledger["held_bars"])
    tests = sharpe_tests(ledger["trade_returns"], max(1, int(n_trials)), [s for s in trial_sharpes or []])
    after["psr"], after["dsr"] = tests["psr"], tests["dsr"]
    secs = epoch_seconds(timestamps)
    return {
        "segment": "validation",
        "lo": env.lo,
        "hi": env.hi,
        "threshold": None,
        "rule": {
            "policy": "deterministic TorchScript policy, one episode over the segment (agents/replay.py)",
            "env": env.settings.to_dict(),
            "chosen_on": chosen_on,
        },
        "bars_per_year": M.BARS_PER_YEAR,
        "in_sample_fit": False,
        "timestamps_s": secs[rec.bars + 1].tolist(),
        "returns": [float(r) for r in rec.returns],
        "trades": [[int(secs[e + 1]), int(secs[t + 1])] for e, _, _, _, t in rec.trades],
        "after_costs": after,
        "sharpe_tests": tests,
        "gate": judge(after, gate_profile),
    }
