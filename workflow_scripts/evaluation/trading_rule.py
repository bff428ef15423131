"""The trading rule: class probabilities on swing events -> a list of trades -> per-bar strategy returns.

The rule (docs/EVALUATION.md has the long form):

1. Only event rows are candidates (label code >= 0, or -2 ambiguous; -1 is no event, -3 "unknown" rows whose
   horizon runs past the data or into a gap cannot be settled and are dropped and counted).
2. On an event at bar t with class probabilities (p_neither, p_breakout, p_reversion), the predicted trade
   class is breakout if p_breakout >= p_reversion, else reversion; we trade only if that probability is
   strictly above `threshold` (chosen on the validation segment). Predicting "neither" never trades.
3. Direction: breakout on a high event = long, reversion on a high event = short; mirrored for low events
   (breakout on a low event = short, reversion on a low event = long). With `allow_short = False` short
   signals are skipped.
4. Entry at the close of bar t. Exit at the first touch of the barriers close_t * exp(+-b_t) at the
   barrier price, or at the close of bar t + H if neither is touched. Ambiguous rows (both barriers inside one
   bar, code -2) are settled pessimistically: the barrier against the position is assumed hit first.
5. No overlapping positions (default): signals are taken greedily in time order and a signal is skipped while
   a position is open; a new position may open at the close of the bar the previous one exited on. With
   `allow_overlap = True` every signal is taken and each position carries `position_size` of equity.

Prices: `price_logret` is log(exit price / entry price). A trade's gross simple return is
d * (exp(price_logret) - 1) for direction d in {+1, -1}; costs (bps per side,
workflow_scripts/evaluation/costs.py) are subtracted as a fraction of the entry notional: net = gross -
(entry_bps + exit_bps) / 1e4.

All functions are vectorised with numpy; the only Python loop is over *taken* trades when selecting
non-overlapping positions (a few hundred per year of hourly bars), never over bars.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from workflow_scripts.evaluation.costs import SymbolCosts, side_costs_bps

NEITHER, BREAKOUT, REVERSION = 0, 1, 2
NO_EVENT, AMBIGUOUS, UNKNOWN = -1, -2, -3


@dataclass(frozen=True)
class TradingRule:
    threshold: float = 0.5
    allow_short: bool = True
    allow_overlap: bool = False
    position_size: float = 1.0

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> TradingRule:
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - {"threshold", "allow_short", "allow_overlap", "position_size"})
        if unknown:
            raise ValueError(f"trading rule: unknown key(s) {unknown}")
        rule = cls(**cfg)
        if not 0.0 <= rule.threshold < 1.0:
            raise ValueError(f"trading rule: threshold must be in [0, 1), got {rule.threshold!r}")
        if not 0.0 < rule.position_size <= 1.0:
            raise ValueError(f"trading rule: position_size must be in (0, 1], got {rule.position_size!r}")
        return rule

    def to_dict(self) -> dict:
        return asdict(self)


def side_sign(side: np.ndarray | str, n: int | None = None) -> np.ndarray:
    """+1 for high events, -1 for low events (a scalar side is broadcast to n rows)."""
    arr = np.asarray(side)
    if arr.ndim == 0:
        arr = np.full(n if n is not None else 1, arr.item())
    ok = np.isin(arr, ["high", "low"])
    if not ok.all():
        raise ValueError(f"side must be 'high' or 'low', got {sorted(set(arr[~ok].tolist()))}")
    return np.where(arr == "high", 1, -1).astype(np.int8)


def signals(proba: np.ndarray, side: np.ndarray | str, threshold: float, allow_short: bool = True):
    """Per row: (direction in {-1, 0, +1}, predicted trade class 1/2 or 0, probability of that class)."""
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] != 3:
        raise ValueError(f"proba must be n x 3 (neither, breakout, reversion), got shape {proba.shape}")
    p_break, p_rev = proba[:, BREAKOUT], proba[:, REVERSION]
    cls = np.where(p_break >= p_rev, BREAKOUT, REVERSION).astype(np.int8)
    conf = np.where(cls == BREAKOUT, p_break, p_rev)
    trade = conf > threshold
    # breakout follows the event (high -> up), reversion goes against it.
    direction = side_sign(side, len(proba)) * np.where(cls == BREAKOUT, 1, -1)
    direction = np.where(trade, direction, 0)
    if not allow_short:
        direction = np.where(direction < 0, 0, direction)
    cls = np.where(direction != 0, cls, NEITHER).astype(np.int8)
    return direction.astype(np.int8), cls, conf


def realised_exits(
    pos: np.ndarray,
    side: np.ndarray | str,
    label: np.ndarray,
    barrier_logret: np.ndarray,
    horizon: int,
    close: np.ndarray,
    exit_pos: np.ndarray | None = None,
    exit_logret: np.ndarray | None = None,
):
    """(exit_pos, price_logret, ambiguous, settled) per row.

    Preferred: the targets stage provides `exit_pos` (bar of the first barrier touch, else t + H) and
    `exit_logret` (log(exit price / close_t): +-barrier at a touch, log(close_{t+H} / close_t) otherwise);
    these are the targets table's `exit_pos__th{theta}` / `exit_logret__th{theta}` columns (docs/TARGETS.md).
    Fallback when they are missing: the price move follows from the label (a touched barrier is +-barrier, a
    "neither" is the close-to-close move over H bars) and the exit bar is taken as t + H, which keeps the
    no-overlap rule conservative but marks barrier exits to market on the wrong bars.
    """
    pos = np.asarray(pos, dtype=np.int64)
    label = np.asarray(label, dtype=np.int64)
    barrier = np.asarray(barrier_logret, dtype=float)
    close = np.asarray(close, dtype=float)
    n = len(pos)
    sgn = side_sign(side, n)
    end = pos + int(horizon)
    in_data = end < len(close)
    ambiguous = label == AMBIGUOUS
    settled = in_data & ((label >= 0) | ambiguous)
    if exit_pos is None or exit_logret is None:
        log_close = np.log(close)
        end_c = np.minimum(end, len(close) - 1)
        horizon_move = log_close[end_c] - log_close[pos]
        # breakout on a high event means the upper barrier was touched first; mirrored for low events.
        move = np.select(
            [label == BREAKOUT, label == REVERSION], [sgn * barrier, -sgn * barrier], horizon_move
        )
        xpos = end.copy()
    else:
        xpos = np.asarray(exit_pos, dtype=float)
        move = np.asarray(exit_logret, dtype=float).copy()
        ok = np.isfinite(xpos) & (xpos >= 0)  # the targets stage writes -1 where no exit exists
        settled &= ok | ambiguous
        xpos = np.where(ok, xpos, end).astype(np.int64)
    settled &= np.isfinite(move) | ambiguous
    if (settled & ((xpos <= pos) | (xpos > end))).any():
        raise ValueError("exit_pos must lie in (t, t + H] for every settled row")
    return xpos, move, ambiguous, settled


def select_non_overlapping(entry_pos: np.ndarray, exit_pos: np.ndarray) -> np.ndarray:
    """Greedy in time order: take a signal, skip every signal that enters before its exit bar. Boolean mask.

    `entry_pos` must be sorted. The next candidate after each one is found with one searchsorted; the loop
    then only walks the taken trades.
    """
    entry_pos = np.asarray(entry_pos, dtype=np.int64)
    exit_pos = np.asarray(exit_pos, dtype=np.int64)
    n = len(entry_pos)
    take = np.zeros(n, dtype=bool)
    if n == 0:
        return take
    if np.any(np.diff(entry_pos) < 0):
        raise ValueError("entry positions must be sorted")
    nxt = np.searchsorted(entry_pos, exit_pos, side="left")
    j = 0
    while j < n:
        take[j] = True
        j = max(int(nxt[j]), j + 1)
    return take


def build_trades(
    *,
    pos: np.ndarray,
    side: np.ndarray | str,
    proba: np.ndarray,
    label: np.ndarray,
    barrier_logret: np.ndarray,
    horizon: int,
    close: np.ndarray,
    rule: TradingRule,
    exit_pos: np.ndarray | None = None,
    exit_logret: np.ndarray | None = None,
) -> dict[str, np.ndarray | int]:
    """Evaluated rows -> trades (before costs). Rows must be sorted by bar position.

    Returns a dict of equal-length arrays (one entry per trade): row (index into the inputs), entry_pos,
    exit_pos, direction, pred_class, prob, label, ambiguous, price_logret, gross_ret; plus the counts
    n_rows, n_unsettled (dropped -3 / past-the-data rows), n_signals (before the overlap rule).
    """
    pos = np.asarray(pos, dtype=np.int64)
    if np.any(np.diff(pos) < 0):
        raise ValueError("rows must be sorted by bar position")
    n = len(pos)
    direction, cls, conf = signals(proba, side, rule.threshold, rule.allow_short)
    xpos, move, ambiguous, settled = realised_exits(
        pos, side, label, barrier_logret, horizon, close, exit_pos, exit_logret
    )
    cand = np.flatnonzero((direction != 0) & settled)
    if not rule.allow_overlap:
        cand = cand[select_non_overlapping(pos[cand], xpos[cand])]
    d = direction[cand].astype(np.int64)
    barrier = np.asarray(barrier_logret, dtype=float)[cand]
    price_logret = np.where(ambiguous[cand], -d * barrier, move[cand])
    gross = d * np.expm1(price_logret)
    return {
        "row": cand,
        "entry_pos": pos[cand],
        "exit_pos": xpos[cand],
        "direction": d,
        "pred_class": cls[cand].astype(np.int64),
        "prob": conf[cand],
        "label": np.asarray(label, dtype=np.int64)[cand],
        "ambiguous": ambiguous[cand],
        "price_logret": price_logret,
        "gross_ret": gross,
        "n_rows": n,
        "n_unsettled": int((~settled).sum()),
        "n_signals": int(((direction != 0) & settled).sum()),
    }


def apply_costs(trades: Mapping[str, Any], costs: SymbolCosts, sigma: np.ndarray | None = None) -> dict:
    """Add entry_cost, exit_cost (fractions of entry notional) and net_ret = gross_ret - entry_cost -
    exit_cost.

    `sigma` is per evaluated row (same order as the rule's inputs); the trade's entry row picks its value.
    """
    out = dict(trades)
    rows = np.asarray(trades["row"], dtype=np.int64)
    sig = None if sigma is None else np.asarray(sigma, dtype=float)[rows]
    entry_bps, exit_bps = side_costs_bps(costs, sig)
    entry_bps = np.broadcast_to(entry_bps, rows.shape).astype(float)
    exit_bps = np.broadcast_to(exit_bps, rows.shape).astype(float)
    out["entry_cost"] = entry_bps / 1e4
    out["exit_cost"] = exit_bps / 1e4
    out["net_ret"] = np.asarray(trades["gross_ret"], dtype=float) - out["entry_cost"] - out["exit_cost"]
    return out


def bar_returns(
    trades: Mapping[str, Any],
    close: np.ndarray,
    lo: int,
    hi: int,
    position_size: float = 1.0,
    net: bool = True,
) -> np.ndarray:
    """Per-bar simple returns of the strategy's equity on bars [lo, hi) (flat bars return 0).

    Inside a trade the equity multiplier relative to entry is marked to market on closes:
    m_t = 1 - c_in at the entry bar, m_i = 1 + d (close_i / close_t - 1) - c_in on bars strictly inside, and
    m_exit = 1 + net_ret on the exit bar (the barrier fill); the bar return is m_i / m_{i-1} - 1, so the bar
    returns of one trade compound exactly to its net return. Overlapping trades add their
    `position_size`-weighted bar returns. With net=False costs are left out (c_in = 0, net_ret -> gross_ret).
    """
    close = np.asarray(close, dtype=float)
    out = np.zeros(hi - lo, dtype=float)
    entry = np.asarray(trades["entry_pos"], dtype=np.int64)
    if len(entry) == 0:
        return out
    exit_ = np.asarray(trades["exit_pos"], dtype=np.int64)
    if entry.min() < lo or exit_.max() >= hi:
        raise ValueError(f"trades must enter and exit inside the segment [{lo}, {hi})")
    d = np.asarray(trades["direction"], dtype=float)
    if net:
        c_in = np.asarray(trades["entry_cost"], dtype=float)
        final = np.asarray(trades["net_ret"], dtype=float)
    else:
        c_in = np.zeros(len(entry))
        final = np.asarray(trades["gross_ret"], dtype=float)
    length = exit_ - entry + 1
    t_idx = np.repeat(np.arange(len(entry)), length)
    starts = np.cumsum(length) - length
    offset = np.arange(length.sum()) - starts[t_idx]
    bar = entry[t_idx] + offset
    m = 1.0 + d[t_idx] * (close[bar] / close[entry[t_idx]] - 1.0) - c_in[t_idx]
    m[offset == 0] = 1.0 - c_in
    m[starts + length - 1] = 1.0 + final
    prev = np.empty_like(m)
    prev[1:] = m[:-1]
    prev[starts] = 1.0
    np.add.at(out, bar - lo, position_size * (m / prev - 1.0))
    return out


def trades_table(trades: Mapping[str, Any], timestamps: np.ndarray | None = None) -> dict[str, list]:
    """JSON-able columns of the trade list (timestamps as ISO strings when given, indexed by bar position)."""
    keys = [k for k, v in trades.items() if isinstance(v, np.ndarray)]
    table = {k: np.asarray(trades[k]).tolist() for k in keys}
    if timestamps is not None:
        ts = np.asarray(timestamps)
        for col in ("entry_pos", "exit_pos"):
            table[col.replace("_pos", "_time")] = [
                str(x) for x in ts[np.asarray(trades[col], dtype=np.int64)]
            ]
    return table
