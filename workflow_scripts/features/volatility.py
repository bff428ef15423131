"""Volatility family (`vol__*`), one set per lookback n (bars); per-bar units (not annualised).

- `std_n`: population std of the last n one-bar log returns; `ewm_vol_n`: sqrt of the EMA (span n) of squared
  log returns; `abs_ret_n`: mean |log return|; `down_semi_n` / `up_semi_n`: sqrt(mean(min(r, 0)^2)) /
  sqrt(mean(max(r, 0)^2)).
- `parkinson_n` = sqrt(mean(ln(h/l)^2) / (4 ln 2)); `garman_klass_n` = sqrt(mean(0.5 ln(h/l)^2 - (2 ln 2 - 1)
  ln(c/o)^2)) (clipped at 0); `rogers_satchell_n` = sqrt(mean(ln(h/c) ln(h/o) + ln(l/c) ln(l/o)));
  `yang_zhang_n` = sqrt(var(ln(o/c_prev)) + k var(ln(c/o)) + (1 - k) RS^2), k = 0.34 / (1.34 + (n + 1) / (n -
  1)).
- `atr_n`: Wilder ATR / c; `tr_atr_n` = true range_t / ATR_n; `range_z_n`: z-score of (h - l) / c over n.
- `vol_ratio_n` = std_n / std_{4n}; `vol_change_n` = std_n now / std_n n bars ago.
- `skew_n`, `kurt_n` (excess) of log returns, only for n >= 8 (fewer returns give noise).

Gap rule: see `_core`; `ewm_vol_n` and `atr_n` smooth per segment.
"""

from __future__ import annotations

import numpy as np

from ._core import Bars, sdiv

LN2 = np.log(2.0)
MIN_MOMENTS = 8


def build(b: Bars, lookbacks: list[int]) -> tuple[dict, dict]:
    o, h, l, c, r = b.o, b.h, b.l, b.c, b.lr
    hl2 = np.log(sdiv(h, l)) ** 2
    co = np.log(sdiv(c, o))
    gk_term = 0.5 * hl2 - (2.0 * LN2 - 1.0) * co**2
    rs_term = np.log(sdiv(h, c)) * np.log(sdiv(h, o)) + np.log(sdiv(l, c)) * np.log(sdiv(l, o))
    overnight = np.log(sdiv(o, b.prev_c))  # needs 1
    r2 = r * r
    down2 = np.where(np.isnan(r), np.nan, np.fmin(r, 0.0) ** 2)
    up2 = np.where(np.isnan(r), np.nan, np.fmax(r, 0.0) ** 2)
    absr = np.abs(r)
    rng_pct = sdiv(b.rng, c)

    out = {}
    for n in lookbacks:
        std = b.std_lr(n)
        out[f"std_{n}"] = std
        out[f"ewm_vol_{n}"] = np.sqrt(b.ema(r2, n, n))
        out[f"abs_ret_{n}"] = b.rmean(absr, n, n)
        out[f"down_semi_{n}"] = np.sqrt(b.rmean(down2, n, n))
        out[f"up_semi_{n}"] = np.sqrt(b.rmean(up2, n, n))
        out[f"parkinson_{n}"] = np.sqrt(b.rmean(hl2, n, n - 1) / (4.0 * LN2))
        out[f"garman_klass_{n}"] = np.sqrt(np.maximum(b.rmean(gk_term, n, n - 1), 0.0))
        rs_mean = np.maximum(b.rmean(rs_term, n, n - 1), 0.0)  # maximum keeps the NaN mask
        out[f"rogers_satchell_{n}"] = np.sqrt(rs_mean)
        k = 0.34 / (1.34 + (n + 1) / max(n - 1, 1))
        var_on = b.rstd(overnight, n, n) ** 2
        var_oc = b.rstd(co, n, n) ** 2
        out[f"yang_zhang_{n}"] = np.sqrt(var_on + k * var_oc + (1.0 - k) * b.mask(rs_mean, n))
        atr = b.wilder(b.tr, n, n - 1)
        out[f"atr_{n}"] = sdiv(atr, c)
        out[f"tr_atr_{n}"] = sdiv(b.tr, atr)
        out[f"range_z_{n}"] = sdiv(rng_pct - b.rmean(rng_pct, n, n - 1), b.rstd(rng_pct, n, n - 1))
        out[f"vol_ratio_{n}"] = sdiv(std, b.std_lr(4 * n))
        out[f"vol_change_{n}"] = sdiv(std, b.shift(std, n))
        if n >= MIN_MOMENTS:
            # Moments from rolling means of powers: pandas' own rolling skew/kurt centre on the whole series'
            # mean, which would let later bars touch earlier values.
            m1 = b.rmean(r, n, n)
            m2 = b.rmean(r2, n, n)
            m3 = b.rmean(r2 * r, n, n)
            m4 = b.rmean(r2 * r2, n, n)
            var = m2 - m1 * m1
            cm3 = m3 - 3 * m1 * m2 + 2 * m1**3
            cm4 = m4 - 4 * m1 * m3 + 6 * m1 * m1 * m2 - 3 * m1**4
            var = np.where(var > 1e-14, var, np.nan)  # near-flat window (halts): moments undefined
            out[f"skew_{n}"] = sdiv(cm3, var**1.5)
            out[f"kurt_{n}"] = sdiv(cm4, var * var) - 3.0
    return {}, out
