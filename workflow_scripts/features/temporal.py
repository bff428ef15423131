"""Calendar and data-continuity family (`time__*`); no lookback, so never lagged.

All from the bar's UTC open timestamp (known at t): hour of day and day of week as sin/cos pairs, day of month
and month of year as sin/cos pairs, weekend flag, trading-session flags (UTC hours: Asia 0-8, Europe 7-15, US
13-21), first-hour-of-day / first-hour-of-week flags, `bars_since_gap` (position inside the gap-free segment,
counting the first bar of the data as after a gap) and `last_gap_hours` (hours missing in the most recent gap,
0 before any). Both are capped at CONTINUITY_CAP bars: uncapped, they would depend on where the data starts,
and live prediction (which rebuilds features from recent history only) could not reproduce them.
"""

from __future__ import annotations

import numpy as np

from ._core import Bars

CONTINUITY_CAP = 720  # bars (30 days): live prediction keeps at least this much history


def build(b: Bars, lookbacks: list[int]) -> tuple[dict, dict]:
    ts = b.timestamp
    hour = ts.hour.to_numpy().astype(np.float64)
    dow = ts.day_of_week.to_numpy().astype(np.float64)  # Monday = 0
    dom = ts.day.to_numpy().astype(np.float64) - 1.0
    days_in_month = ts.days_in_month.to_numpy().astype(np.float64)
    month = ts.month.to_numpy().astype(np.float64) - 1.0
    how = dow * 24.0 + hour  # hour of week
    two_pi = 2.0 * np.pi

    static = {
        "hour_sin": np.sin(two_pi * hour / 24.0),
        "hour_cos": np.cos(two_pi * hour / 24.0),
        "dow_sin": np.sin(two_pi * dow / 7.0),
        "dow_cos": np.cos(two_pi * dow / 7.0),
        "how_sin": np.sin(two_pi * how / 168.0),
        "how_cos": np.cos(two_pi * how / 168.0),
        "dom_sin": np.sin(two_pi * dom / days_in_month),
        "dom_cos": np.cos(two_pi * dom / days_in_month),
        "month_sin": np.sin(two_pi * month / 12.0),
        "month_cos": np.cos(two_pi * month / 12.0),
        "weekend": (dow >= 5).astype(np.float64),
        "session_asia": (hour < 8).astype(np.float64),
        "session_europe": ((hour >= 7) & (hour < 16)).astype(np.float64),
        "session_us": ((hour >= 13) & (hour < 22)).astype(np.float64),
        "day_open": (hour == 0).astype(np.float64),
        "week_open": (how == 0).astype(np.float64),
        "bars_since_gap": np.minimum(b.pos, CONTINUITY_CAP).astype(np.float64),
        "last_gap_hours": np.where(b.pos < CONTINUITY_CAP, b.last_gap_hours, 0).astype(np.float64),
    }
    return static, {}
