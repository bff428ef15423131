"""Market-structure family (`struct__*`), one set per lookback n (bars); windows include bar t.

- `dist_high_n` / `dist_low_n` = c / (highest high | lowest low over n) - 1.
- `dist_prev_high_n` / `dist_prev_low_n`: the same against the n bars BEFORE t (breakout above / below them >
  0 / < 0).
- `close_range_pos_n` = position of c in the range of closes over n (0 = lowest close, 1 = highest).
- `bars_since_high_n` / `bars_since_low_n`: bars since the most recent highest high / lowest low (0 = bar t).
- `hh_frac_n`, `hl_frac_n`, `lh_frac_n`, `ll_frac_n`: share of the last n bars with a higher high, higher low,
  lower high, lower low than the bar before.
- `range_width_n` = (highest high - lowest low) / c; `median_dist_n` = c / median close - 1.
- `volume_z_n`: z-score of log(1 + volume); `volume_ratio_n` = v / mean v; `volume_trend_n` = mean v over the
  last n / mean v over the n before; `volume_imbalance_n` = sum(sign(c - o) v) / sum(v).

Gap rule: see `_core`.
"""

from __future__ import annotations

import numpy as np

from ._core import Bars, sdiv


def build(b: Bars, lookbacks: list[int]) -> tuple[dict, dict]:
    c, h, l, v = b.c, b.h, b.l, b.v
    prev_h, prev_l = b.shift(h, 1), b.shift(l, 1)

    def step_flag(cond):
        return b.mask(cond.astype(np.float64), 1)

    hh_flag, hl_flag = step_flag(h > prev_h), step_flag(l > prev_l)
    lh_flag, ll_flag = step_flag(h < prev_h), step_flag(l < prev_l)
    logv = np.log1p(v)
    signed_v = np.sign(c - b.o) * v

    out = {}
    for n in lookbacks:
        hh, ll = b.hh(n), b.ll(n)
        out[f"dist_high_{n}"] = sdiv(c, hh) - 1.0
        out[f"dist_low_{n}"] = sdiv(c, ll) - 1.0
        out[f"dist_prev_high_{n}"] = sdiv(c, b.shift(hh, 1)) - 1.0
        out[f"dist_prev_low_{n}"] = sdiv(c, b.shift(ll, 1)) - 1.0
        cmax, cmin = b.rmax(c, n, n - 1), b.rmin(c, n, n - 1)
        out[f"close_range_pos_{n}"] = sdiv(c - cmin, cmax - cmin)
        out[f"bars_since_high_{n}"] = b.bars_since_max(h, n, n - 1)
        out[f"bars_since_low_{n}"] = b.bars_since_min(l, n, n - 1)
        out[f"hh_frac_{n}"] = b.rmean(hh_flag, n, n)
        out[f"hl_frac_{n}"] = b.rmean(hl_flag, n, n)
        out[f"lh_frac_{n}"] = b.rmean(lh_flag, n, n)
        out[f"ll_frac_{n}"] = b.rmean(ll_flag, n, n)
        out[f"range_width_{n}"] = sdiv(hh - ll, c)
        out[f"median_dist_{n}"] = sdiv(c, b.rmedian(c, n, n - 1)) - 1.0
        out[f"volume_z_{n}"] = sdiv(logv - b.rmean(logv, n, n - 1), b.rstd(logv, n, n - 1))
        mean_v = b.rmean(v, n, n - 1)
        out[f"volume_ratio_{n}"] = sdiv(v, mean_v)
        out[f"volume_trend_{n}"] = sdiv(mean_v, b.shift(mean_v, n))
        out[f"volume_imbalance_{n}"] = sdiv(b.rsum(signed_v, n, n - 1), b.rsum(v, n, n - 1))
    return {}, out
