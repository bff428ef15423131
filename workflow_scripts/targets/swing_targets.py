"""Swing breakout/reversion targets (exact definition in docs/TARGETS.md).

Time semantics: the event at bar t compares bar t with the band of the w bars BEFORE it (t-w .. t-1), so the
band is known before t closes; the label looks forward over bars t+1 .. t+H and is therefore only known at bar
t+H (`label_end`). Bars are positions in the ingested table; a gap (consecutive timestamps more than one hour
apart) breaks contiguity: a band, a volatility estimate or a horizon that would span a gap is not computed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NO_EVENT, NEITHER, BREAKOUT, REVERSION, AMBIGUOUS, UNKNOWN = -1, 0, 1, 2, -2, -3
CLASS_NAMES = {NEITHER: "neither", BREAKOUT: "breakout", REVERSION: "reversion"}
# First-touch outcomes of the barrier race, independent of the side of the swing.
UP, DOWN, BOTH, NONE, OPEN = 1, 2, 3, 0, -1


def segment_position(timestamps: pd.Series) -> np.ndarray:
    """Bars since the last gap (0 on the first bar after a gap): how much contiguous history a bar has."""
    ts = timestamps.to_numpy()
    new_segment = np.ones(len(ts), dtype=bool)
    new_segment[1:] = (ts[1:] - ts[:-1]) != np.timedelta64(1, "h")
    seg_id = np.cumsum(new_segment) - 1
    start = np.flatnonzero(new_segment)
    return np.arange(len(ts)) - start[seg_id]


def contiguous_ahead(timestamps: pd.Series) -> np.ndarray:
    """Bars after t reachable without crossing a gap or the end of the data."""
    pos = segment_position(timestamps)
    starts = np.flatnonzero(pos == 0)
    last_of_segment = np.append(starts[1:] - 1, len(pos) - 1)
    seg_id = np.cumsum(pos == 0) - 1
    return last_of_segment[seg_id] - np.arange(len(pos))


def band(close: np.ndarray, seg_pos: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample std of close over bars t-w .. t-1; NaN where those bars are not contiguous with t."""
    s = pd.Series(close)
    prior = s.shift(1)
    mean = prior.rolling(window, min_periods=window).mean().to_numpy(copy=True)
    std = prior.rolling(window, min_periods=window).std(ddof=1).to_numpy(copy=True)
    valid = seg_pos >= window
    mean[~valid] = np.nan
    std[~valid] = np.nan
    return mean, std


def sigma_logret(close: np.ndarray, seg_pos: np.ndarray, window: int, min_bars: int) -> np.ndarray:
    """Sample std of log returns over the last L = max(w, min_bars) bars up to t (needs L+1 contiguous
    closes)."""
    lookback = max(int(window), int(min_bars))
    logret = np.empty_like(close)
    logret[0] = np.nan
    logret[1:] = np.diff(np.log(close))
    sigma = pd.Series(logret).rolling(lookback, min_periods=lookback).std(ddof=1).to_numpy(copy=True)
    sigma[seg_pos < lookback] = np.nan
    return sigma


def events(bars: pd.DataFrame, mean: np.ndarray, std: np.ndarray, kind: str, k: float) -> np.ndarray:
    """Boolean event flags for one type and std threshold k (strict inequalities; s = 0 or NaN -> no
    event)."""
    close, high, low = (bars[c].to_numpy() for c in ("close", "high", "low"))
    has_band = np.isfinite(std) & (std > 0)
    upper = mean + k * std
    lower = mean - k * std
    with np.errstate(invalid="ignore"):
        flags = {
            "high_breakout": close > upper,
            "high_reversion": (high > upper) & (close <= upper),
            "low_breakout": close < lower,
            "low_reversion": (low < lower) & (close >= lower),
        }[kind]
    return flags & has_band


def barrier_race(
    bars: pd.DataFrame, sigma: np.ndarray, theta: float, horizon: int, ahead: np.ndarray
) -> dict[str, np.ndarray]:
    """Which barrier close*exp(+-theta*sigma*sqrt(H)) bars t+1..t+H touch first.

    Returns `outcome` (UP, DOWN, BOTH in the same bar, NONE within a complete horizon, OPEN when the horizon
    runs past the data or into a gap untouched), `exit_pos` (bar of the touch, or t+H for NONE) and
    `exit_logret` (log of exit price over entry close from a long position's view: the barrier for a single
    touch, the close at t+H for NONE, NaN for BOTH and OPEN).
    """
    close, high, low = (bars[c].to_numpy() for c in ("close", "high", "low"))
    n = len(close)
    width = theta * sigma * np.sqrt(horizon)
    up = close * np.exp(width)
    down = close * np.exp(-width)
    outcome = np.full(n, OPEN, dtype=np.int8)
    exit_pos = np.full(n, -1, dtype=np.int64)
    undecided = np.isfinite(width)
    idx = np.arange(n)
    for h in range(1, horizon + 1):
        reachable = undecided & (ahead >= h)
        j = np.minimum(idx + h, n - 1)
        hit_up = reachable & (high[j] >= up)
        hit_down = reachable & (low[j] <= down)
        for mask, code in ((hit_up & hit_down, BOTH), (hit_up & ~hit_down, UP), (hit_down & ~hit_up, DOWN)):
            outcome[mask] = code
            exit_pos[mask] = idx[mask] + h
        undecided &= ~(hit_up | hit_down)
    complete = undecided & (ahead >= horizon)
    outcome[complete] = NONE
    exit_pos[complete] = idx[complete] + horizon
    exit_logret = np.full(n, np.nan)
    with np.errstate(invalid="ignore"):
        exit_logret[outcome == UP] = width[outcome == UP]
        exit_logret[outcome == DOWN] = -width[outcome == DOWN]
        none = outcome == NONE
        exit_logret[none] = np.log(close[exit_pos[none]] / close[none])
    return {"outcome": outcome, "exit_pos": exit_pos, "exit_logret": exit_logret, "barrier_logret": width}


def labels_for_side(outcome: np.ndarray, side: str) -> np.ndarray:
    """Map a barrier race to classes: breakout = the barrier in the swing's direction first."""
    toward, away = (UP, DOWN) if side == "high" else (DOWN, UP)
    label = np.full(outcome.shape, UNKNOWN, dtype=np.int8)
    label[outcome == NONE] = NEITHER
    label[outcome == toward] = BREAKOUT
    label[outcome == away] = REVERSION
    label[outcome == BOTH] = AMBIGUOUS
    return label


def build_targets(
    bars: pd.DataFrame, window: int, grid: list[dict], horizon: int, sigma_min_bars: int
) -> pd.DataFrame:
    """The targets table of one (symbol, window): label codes per target id, plus per-theta trade facts."""
    seg_pos = segment_position(bars["timestamp"])
    ahead = contiguous_ahead(bars["timestamp"])
    close = bars["close"].to_numpy()
    mean, std = band(close, seg_pos, window)
    sigma = sigma_logret(close, seg_pos, window, sigma_min_bars)
    columns: dict[str, np.ndarray] = {
        "timestamp": bars["timestamp"].to_numpy(),
        "label_end": np.arange(len(bars), dtype=np.int64) + horizon,
    }
    races = {}
    for theta in sorted({g["theta"] for g in grid}):
        race = barrier_race(bars, sigma, theta, horizon, ahead)
        races[theta] = race
        tag = f"th{theta!r}"
        columns[f"exit_pos__{tag}"] = race["exit_pos"]
        columns[f"exit_logret__{tag}"] = race["exit_logret"]
        columns[f"barrier_logret__{tag}"] = race["barrier_logret"]
    for target in grid:
        flags = events(bars, mean, std, target["type"], target["k"])
        label = labels_for_side(races[target["theta"]]["outcome"], target["side"])
        columns[target["id"]] = np.where(flags, label, NO_EVENT).astype(np.int8)
    out = pd.DataFrame(columns)
    out["timestamp"] = bars["timestamp"].to_numpy()
    return out


def target_summary(table: pd.DataFrame, grid: list[dict]) -> dict:
    """Per target: events, class counts, ambiguous and unknown counts."""
    summary = {}
    for target in grid:
        col = table[target["id"]].to_numpy()
        summary[target["id"]] = {
            "events": int((col != NO_EVENT).sum()),
            "neither": int((col == NEITHER).sum()),
            "breakout": int((col == BREAKOUT).sum()),
            "reversion": int((col == REVERSION).sum()),
            "ambiguous": int((col == AMBIGUOUS).sum()),
            "unknown": int((col == UNKNOWN).sum()),
        }
    return summary
