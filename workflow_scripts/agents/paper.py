"""Paper trading of a deployed agent (docs/AGENTS.md, "Registry, deploy, paper"): the bars newer than the
data the agent was built on, replayed through its exported TorchScript policy in the same TradingEnv (the
same cost model, snapshot and scoring settings as its validation and test scores), into the lifecycle's
append-only ledger (lifecycle/paper.py writes it; this module computes the record).

An agent trades a position in [-1, 1] on both sides, so its ledger is keyed by slot and VIN with side "both".

Which bars. The agent's last bar is the last bar of the data its study, ensemble or hybrid ever read
(config.json `last_bar`: test included); paper trading starts at the first bar after it, with `lookback`
(and the CNN-LSTM's window) of earlier bars as history for the observation only. One ledger line per env
step at bar t (position chosen on bars <= t, return from close_t to close_t+1, the costs of the change at t):
its bar is t + 1, the bar whose close realises it. The last step of an episode liquidates the open position
(environment.py), so it is left out: the ledger holds the steps t = lo .. n - 3 and the trades closed by
them, all fixed by bars <= t + 1, and appending bars never changes its past (tested)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from workflow_scripts.agents.environment import EnvSettings, TradingEnv, market_data
from workflow_scripts.agents.replay import Policy, replay
from workflow_scripts.evaluation import metrics as M
from workflow_scripts.evaluation.costs import costs_from_snapshot


def scripted_policy(module) -> Policy:
    """The exported policy's deterministic action (what SB3's predict(deterministic=True) returns)."""
    import torch  # heavy: torch

    def act(obs: np.ndarray):
        with torch.no_grad():
            out = module.action(torch.from_numpy(np.ascontiguousarray(obs, dtype=np.float32)[None]))
        action = np.asarray(out.numpy()[0])
        return action.item() if action.size == 1 else action  # a discrete index must be a scalar

    return act


def standardised(columns: np.ndarray, observation: Mapping[str, Any]) -> np.ndarray:
    """The agent's observation features: (x - mean) / std with the train-segment statistics its study
    recorded (config.json `observation`), never recomputed on new bars."""
    mean = np.asarray(observation["mean"], dtype=np.float64)
    std = np.asarray(observation["std"], dtype=np.float64)
    x = np.asarray(columns, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(mean):
        raise ValueError(f"agent observation: expected {len(mean)} feature columns, got shape {x.shape}")
    return ((x - mean) / std).astype(np.float32)


def utc(when) -> pd.Timestamp:
    """A timestamp in UTC (a naive one is taken as UTC, as the bars' timestamps are)."""
    t = pd.Timestamp(when)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _line(obj: Mapping) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"


def _num(x: float) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def paper_record(
    policy: Policy,
    features: np.ndarray,
    bars: pd.DataFrame,
    last_bar: str | pd.Timestamp,
    *,
    env: Mapping[str, Any],
    costs: Mapping[str, Any],
    sigma_bars: int,
    bars_per_year: int = M.BARS_PER_YEAR,
) -> dict:
    """The whole paper record of one agent on its symbol's `bars` (timestamp, close; `features` the
    standardised observation features of the same rows): {"equity": [lines], "trades": [lines], "paper":
    after-cost metrics, "paper_start", "paper_end", "n_bars", "n_trades", "positions"}; deterministic in the
    bars (the policy is deterministic)."""
    bars = bars.reset_index(drop=True)
    if len(features) != len(bars):
        raise ValueError(f"agent paper: {len(features)} feature rows for {len(bars)} bars")
    ts = pd.to_datetime(bars["timestamp"], utc=True)
    newer = np.flatnonzero((ts > utc(last_bar)).to_numpy())
    n = len(bars)
    empty = {"equity": [], "trades": [], "paper": None, "paper_start": None, "paper_end": None}
    lo = int(newer[0]) if len(newer) else n
    if n - lo < 3:  # a step that is not the liquidating last one needs bars lo, lo + 1 and one more
        return empty | {"n_bars": 0, "n_trades": 0, "positions": []}
    settings = EnvSettings.from_mapping(dict(env) | {"episode_bars": None})
    data = market_data(features, bars["close"].to_numpy(dtype=float), bars["timestamp"], int(sigma_bars))
    trading = TradingEnv(data, (lo, n), costs_from_snapshot(costs), settings)
    rec = replay(policy, trading, stop=n - 2)  # the step at n - 2 would liquidate: left out (docstring)
    times = [t.isoformat() for t in ts]
    positions = [float(p) for p in rec.positions]
    trade_lines = [
        _line(
            {
                "entry_time": times[entry],
                "exit_time": times[t],
                "direction": "long" if direction > 0 else "short",
                "net_ret": _num(net),
            }
        )
        for entry, _, direction, net, t in rec.trades
    ]
    net = np.asarray(rec.returns, dtype=float)
    trade_rets = np.asarray([float(_trade_ret(x)) for x in trade_lines], dtype=float)
    held = int(np.sum(np.asarray(positions) != 0))
    paper = M.trading_metrics(net, trade_rets, held, 1.0, int(bars_per_year))
    equity = np.cumprod(1.0 + net)
    equity_lines = [
        _line({"bar": times[lo + 1 + i], "equity": _num(e), "ret": _num(r)})
        for i, (e, r) in enumerate(zip(equity, net))
    ]
    return {
        "equity": equity_lines,
        "trades": trade_lines,
        "paper": {k: _num(v) if isinstance(v, (int, float, np.number)) else v for k, v in paper.items()},
        "paper_start": times[lo + 1],
        "paper_end": times[lo + len(net)],
        "n_bars": len(net),
        "n_trades": len(trade_lines),
        "positions": positions,
    }


def _trade_ret(line: str) -> float:
    return json.loads(line)["net_ret"]
