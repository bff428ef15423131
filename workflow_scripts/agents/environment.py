"""A costed trading environment (gymnasium API) over one coin's bars of one segment.

Time line of one step (bar t is the current bar; everything in the observation is known at its close):

    observation at t   feature rows of bars t-L+1 .. t (L = `lookback`; rows before bar 0 are zeros), then the
                       position state: position p in [-1, 1], unrealised log return of the open trade
                       sign(p) * log(close_t / close_entry), log1p(bars in trade)
    action at t        the target position: discrete 0 flat / 1 long / 2 short, or continuous p in [-1, 1]
    fill               at close_t; the change from the old to the new position pays the project's cost
                       model (evaluation/costs.py `side_costs_bps`: fee + half spread + volatility slippage
                       per side, sigma_t known at t): the part that closes exposure pays the exit side, the
                       part that opens exposure the entry side, in proportion to the notional traded
    move to t + 1      equity factor = (1 - close cost) (1 - open cost) (1 + p (close_t+1 / close_t - 1))
    reward             log(equity factor) - penalties, i.e. the after-cost log return of the held position
    end                after the step that reaches the segment's last bar; an open position is liquidated
                       there at that bar's exit cost, so the sum of an episode's log returns is the log of
                       its after-cost equity with every trade closed (as in the backtest, no trade outlives
                       the segment)

Penalties (optional, 0 by default, never part of the returns the metrics read):
    time_decay         seed 004's "time decay": time_decay bps per bar held times the bars in the trade, a
                       holding-time penalty that grows the longer a trade runs
    drawdown_penalty   coefficient on each increase of the episode's drawdown from its running equity peak

No look-ahead: the observation at t reads feature rows <= t and closes <= t only; the close of t + 1 enters
the reward of the step from t, never an observation at t (tests/agents perturb every bar after t). The
environment does not normalise: it is given a plain float array (`standardise` below does it with the train
segment's statistics); non-finite values become 0 and values are clipped to +-`obs_clip`.

The ledger (`ledger()`) keeps what the project's trade metrics need: the net simple return of every bar, the
net return of every closed trade (a trade is a run of positions of one sign; its return compounds its bars'
equity factors, entry and exit costs included, like `trading_rule.bar_returns`) and the bars held."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium import spaces

from workflow_scripts.evaluation.costs import SymbolCosts, side_costs_bps
from workflow_scripts.targets.swing_targets import segment_position, sigma_logret

FLAT, LONG, SHORT = 0, 1, 2
DISCRETE_POSITIONS = (0.0, 1.0, -1.0)  # by action: flat, long, short
N_STATE = 3  # position, unrealised log return, log1p(bars in trade)
MIN_FACTOR = 1e-12  # an equity factor <= 0 (a short through a doubling) is floored: the account is wiped out


@dataclass(frozen=True)
class EnvSettings:
    """What shapes the environment: config group `agents.env` (config/agents/ppo.yaml, the one home of the
    values; a tuned lookback / time_decay replaces the group's). `episode_bars` None: one episode = the whole
    segment; else random windows of this length (training)."""

    lookback: int
    continuous: bool
    time_decay: float
    drawdown_penalty: float
    episode_bars: int | None
    reward_scale: float
    obs_clip: float

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> EnvSettings:
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - set(cls.__dataclass_fields__))
        missing = sorted(set(cls.__dataclass_fields__) - set(cfg))
        if unknown or missing:
            raise ValueError(
                f"agent env: unknown key(s) {unknown}, missing key(s) {missing}; "
                f"expected: {sorted(cls.__dataclass_fields__)}"
            )
        settings = cls(**cfg)
        settings.check()
        return settings

    def check(self) -> None:
        if int(self.lookback) < 1:
            raise ValueError(f"agent env: lookback must be >= 1, got {self.lookback!r}")
        if self.time_decay < 0 or self.drawdown_penalty < 0:
            raise ValueError("agent env: time_decay and drawdown_penalty must be >= 0")
        if self.episode_bars is not None and int(self.episode_bars) < 2:
            raise ValueError(f"agent env: episode_bars must be >= 2 or null, got {self.episode_bars!r}")
        if not self.reward_scale > 0 or not self.obs_clip > 0:
            raise ValueError("agent env: reward_scale and obs_clip must be > 0")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MarketData:
    """One coin's bars in bar order: features (n, F), close (n,), sigma (n,) = per-bar log-return std known
    at t
    (the slippage model's input; NaN means unknown and pays the slippage floor)."""

    features: np.ndarray
    close: np.ndarray
    sigma: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.close)
        if self.features.ndim != 2 or len(self.features) != n or len(self.sigma) != n:
            raise ValueError("features (n, F), close (n,) and sigma (n,) must cover the same bars")
        if not np.all(np.isfinite(self.close)) or np.any(np.asarray(self.close) <= 0):
            raise ValueError("close prices must be finite and > 0")


def market_data(
    features: np.ndarray, close: np.ndarray, timestamps: Any = None, sigma_bars: int = 24
) -> MarketData:
    """MarketData with sigma from the targets stage's estimator (`sigma_logret`: std of the last `sigma_bars`
    log returns up to t, NaN across a gap; without timestamps the bars are taken as contiguous)."""
    close = np.asarray(close, dtype=float)
    if timestamps is None:
        seg_pos = np.arange(len(close))
    else:
        seg_pos = segment_position(pd.Series(timestamps))
    sigma = sigma_logret(close, seg_pos, sigma_bars, sigma_bars)
    return MarketData(np.asarray(features, dtype=np.float32), close, sigma)


def standardise(features: np.ndarray, train: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """(features - mean) / std with the mean and std of the train rows [lo, hi) only (NaN ignored; std 1 for a
    constant or all-NaN column); float32. Returns the array and {mean, std} to record."""
    x = np.asarray(features, dtype=np.float64)
    lo, hi = train
    block = x[lo:hi]
    ok = np.isfinite(block)
    count = ok.sum(0)
    mean = np.where(count > 0, np.where(ok, block, 0.0).sum(0) / np.maximum(count, 1), 0.0)
    var = np.where(ok, (block - mean) ** 2, 0.0).sum(0) / np.maximum(count, 1)
    std = np.sqrt(var)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    return ((x - mean) / std).astype(np.float32), {"mean": mean.tolist(), "std": std.tolist()}


def position_change(old: float, new: float) -> tuple[float, float]:
    """(notional closed, notional opened) when the position moves from `old` to `new`: reducing or reversing
    closes exposure, adding or reversing opens it (a flip from +1 to -1 closes 1 and opens 1)."""
    if old == 0 or new == 0 or math.copysign(1, old) != math.copysign(1, new):
        return abs(old), abs(new)
    return max(0.0, abs(old) - abs(new)), max(0.0, abs(new) - abs(old))


class TradingEnv(gym.Env):
    """One coin, one segment [lo, hi) of bar positions; see the module docstring for the step semantics."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        data: MarketData,
        segment: tuple[int, int],
        costs: SymbolCosts,
        settings: EnvSettings,
    ):
        super().__init__()
        self.settings = settings
        self.settings.check()
        self.data, self.costs = data, costs
        self.lo, self.hi = int(segment[0]), int(segment[1])
        if not 0 <= self.lo and self.hi <= len(data.close) and self.hi - self.lo >= 2:
            raise ValueError(f"segment [{self.lo}, {self.hi}) must hold >= 2 bars inside {len(data.close)}")
        ep = self.settings.episode_bars
        if ep is not None and ep > self.hi - self.lo:
            raise ValueError(f"episode_bars {ep} is longer than the segment ({self.hi - self.lo} bars)")
        lookback, n_features = int(self.settings.lookback), data.features.shape[1]
        clip = float(self.settings.obs_clip)
        # Clipping is elementwise, so doing it once for every bar reads nothing of the future into the past.
        clean = np.clip(np.nan_to_num(data.features, nan=0.0, posinf=clip, neginf=-clip), -clip, clip)
        self._rows = np.vstack([np.zeros((lookback - 1, n_features)), clean]).astype(np.float32)
        bound = max(clip, math.log1p(len(data.close)))
        self.observation_space = spaces.Box(-bound, bound, (lookback * n_features + N_STATE,), np.float32)
        if self.settings.continuous:
            self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        else:
            self.action_space = spaces.Discrete(3)
        entry_bps, exit_bps = side_costs_bps(costs, data.sigma)
        self._entry_cost = np.broadcast_to(entry_bps, data.close.shape) / 1e4
        self._exit_cost = np.broadcast_to(exit_bps, data.close.shape) / 1e4
        self._start, self._end = self.lo, self.hi
        self._reset_state(self.lo)

    # -- state -
    def _reset_state(self, start: int) -> None:
        self._t = start
        self._pos = 0.0
        self._entry_bar = start
        self._equity = self._peak = 1.0
        self._drawdown = self._deeper = 0.0
        self._trade_factor = 1.0
        self._bar_returns: list[float] = []
        self._trade_returns: list[float] = []
        self._positions: list[float] = []
        self._held = 0

    def _target(self, action: Any) -> float:
        if self.settings.continuous:
            value = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
            return float(np.clip(value, -1.0, 1.0))
        return DISCRETE_POSITIONS[int(action)]

    def _observation(self) -> np.ndarray:
        t, lookback = self._t, int(self.settings.lookback)
        window = self._rows[t : t + lookback].reshape(-1)  # padded index t .. t+L-1 = bars t-L+1 .. t
        state = np.array([self._pos, self._unrealised(), math.log1p(self._bars_in_trade())], dtype=np.float32)
        bound = self.observation_space.high[0]
        return np.concatenate([window, np.clip(state, -bound, bound)]).astype(np.float32)

    def _unrealised(self) -> float:
        if self._pos == 0:
            return 0.0
        move = math.log(self.data.close[self._t] / self.data.close[self._entry_bar])
        return math.copysign(1.0, self._pos) * move

    def _bars_in_trade(self) -> int:
        return self._t - self._entry_bar if self._pos != 0 else 0

    # -- gymnasium API -
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        ep = self.settings.episode_bars
        if ep is None:
            self._start, self._end = self.lo, self.hi
        else:
            self._start = int(self.np_random.integers(self.lo, self.hi - int(ep) + 1))
            self._end = self._start + int(ep)
        self._reset_state(self._start)
        return self._observation(), {"bar": self._t}

    def step(self, action: Any):
        if self._t >= self._end - 1:
            raise RuntimeError("episode is over: call reset()")
        t, old, new = self._t, self._pos, self._target(action)
        closed, opened = position_change(old, new)
        close_cost, open_cost = closed * self._exit_cost[t], opened * self._entry_cost[t]
        self._book_change(old, new, close_cost, open_cost, t)
        hold = 1.0 + new * (self.data.close[t + 1] / self.data.close[t] - 1.0)
        factor = (1.0 - close_cost) * (1.0 - open_cost) * hold
        self._pos, self._t = new, t + 1
        if new != 0:
            self._trade_factor *= hold
            self._held += 1
        terminated = self._t >= self._end - 1
        liquidation = 0.0
        if terminated and new != 0:
            liquidation = abs(new) * self._exit_cost[self._t]
            factor *= 1.0 - liquidation
            self._close_trade(1.0 - liquidation)
        factor = max(factor, MIN_FACTOR)
        log_return = math.log(factor)
        self._track_equity(factor)
        penalty = self._penalty(new)
        self._bar_returns.append(factor - 1.0)
        self._positions.append(new)
        info = {
            "bar": self._t,
            "position": new,
            "log_return": log_return,
            "cost": 1.0 - (1.0 - close_cost) * (1.0 - open_cost) * (1.0 - liquidation),
            "penalty": penalty,
            "equity": self._equity,
        }
        reward = (log_return - penalty) * float(self.settings.reward_scale)
        return self._observation(), float(reward), terminated, False, info

    # -- ledger -
    def _book_change(self, old: float, new: float, close_cost: float, open_cost: float, t: int) -> None:
        reverses = old != 0 and (new == 0 or math.copysign(1, old) != math.copysign(1, new))
        if reverses:
            self._close_trade(1.0 - close_cost)
        elif close_cost:
            self._trade_factor *= 1.0 - close_cost  # a partial reduction: the trade goes on
        if new != 0 and (old == 0 or reverses):
            self._trade_factor, self._entry_bar = 1.0 - open_cost, t
        elif open_cost:
            self._trade_factor *= 1.0 - open_cost

    def _close_trade(self, last_factor: float) -> None:
        self._trade_returns.append(self._trade_factor * last_factor - 1.0)
        self._trade_factor = 1.0

    def _track_equity(self, factor: float) -> None:
        self._equity *= factor
        self._peak = max(self._peak, self._equity)
        drawdown = 1.0 - self._equity / self._peak
        self._deeper, self._drawdown = max(0.0, drawdown - self._drawdown), drawdown

    def _penalty(self, new: float) -> float:
        deeper = self._deeper
        holding = self.settings.time_decay * 1e-4 * abs(new) * self._bars_in_trade()
        return holding + self.settings.drawdown_penalty * deeper

    def ledger(self) -> dict:
        """This episode so far: bar_returns (net simple, one per step), trade_returns (net, closed trades),
        positions (one per step), held_bars, bars [start, end)."""
        return {
            "bar_returns": np.asarray(self._bar_returns, dtype=float),
            "trade_returns": np.asarray(self._trade_returns, dtype=float),
            "positions": np.asarray(self._positions, dtype=float),
            "held_bars": int(self._held),
            "bars": (self._start, self._end),
        }
