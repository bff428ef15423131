"""Technical-indicator family (`tech__*`), one set per lookback n (bars). All prices are closes unless stated.

- `ret_n` = c_t / c_{t-n} - 1; `ret_sharpe_n` = log(c_t / c_{t-n}) / (std of one-bar log returns * sqrt(n)).
- `sma_dist_n`, `ema_dist_n` = c / SMA_n (EMA_n, span n) - 1; `ema_slope_n` = EMA_t / EMA_{t-1} - 1.
- `rsi_n`: Wilder RSI in [0, 100]; `mfi_n`: money-flow index in [0, 100] (typical price * volume).
- `bb_pctb_n` = (c - (SMA - 2 sd)) / (4 sd), `bb_width_n` = 4 sd / SMA (population sd of closes over n).
- `zscore_ema_n` = (c - EMA_n) / sd_n (the SMA z-score is omitted: it is exactly 4 * %b - 2).
- `stoch_k_n` = (c - lowest low) / (highest high - lowest low), `stoch_d_n` = 3-bar SMA of %K, `stoch_slow_n`
  = 3-bar SMA of %D. Williams %R is omitted: it is exactly %K - 1.
- `cci_n` = (tp - SMA(tp)) / (0.015 * mean absolute deviation of tp), tp = (h + l + c) / 3.
- `obv_slope_n` = sum(sign(dc) * v) / sum(v) over n bars (the n-bar change of OBV, scaled to [-1, 1]).
- `macd_n`, `macd_signal_n`, `macd_hist_n`: EMA_n - EMA_{slow}, its EMA (span sig) and the difference, divided
  by the close; slow = round(26 n / 12), sig = max(2, round(9 n / 12)) (12/26/9 scaled); `macd_hist_z_n` =
  hist / sd of closes over slow bars.
- `linreg_slope_n` (log price per bar) and `linreg_r2_n` of an OLS line through the last n log closes.
- `vwap_dist_n` = c / (sum(tp v) / sum(v)) - 1; `efficiency_n` = |c_t - c_{t-n}| / sum |dc| (Kaufman).

EMA/RSI/MACD smoothing runs per gap-free segment; see `_core` for the gap rule.
"""

from __future__ import annotations

import numpy as np

from ._core import Bars, sdiv


def build(b: Bars, lookbacks: list[int]) -> tuple[dict, dict]:
    c, v, tp = b.c, b.v, b.tp
    dc = c - b.prev_c  # needs 1
    gain = np.where(np.isnan(dc), np.nan, np.fmax(dc, 0.0))
    loss = np.where(np.isnan(dc), np.nan, np.fmax(-dc, 0.0))
    prev_tp = b.shift(tp, 1)
    mf = tp * v
    mf_pos = np.where(np.isnan(prev_tp), np.nan, np.where(tp > prev_tp, mf, 0.0))
    mf_neg = np.where(np.isnan(prev_tp), np.nan, np.where(tp < prev_tp, mf, 0.0))
    obv_step = np.sign(dc) * v
    absdc = np.abs(dc)
    tpv = tp * v

    out = {}
    for n in lookbacks:
        sma, sd, ema = b.sma_c(n), b.std_c(n), b.ema_c(n)
        c_n = b.shift(c, n)
        out[f"ret_{n}"] = sdiv(c, c_n) - 1.0
        out[f"ret_sharpe_{n}"] = sdiv(np.log(sdiv(c, c_n)), b.std_lr(n) * np.sqrt(n))
        out[f"sma_dist_{n}"] = sdiv(c, sma) - 1.0
        out[f"ema_dist_{n}"] = sdiv(c, ema) - 1.0
        out[f"ema_slope_{n}"] = b.mask(sdiv(ema, b.shift(ema, 1)) - 1.0, n)

        avg_gain, avg_loss = b.wilder(gain, n, n), b.wilder(loss, n, n)
        out[f"rsi_{n}"] = 100.0 * sdiv(avg_gain, avg_gain + avg_loss)
        pos_sum, neg_sum = b.rsum(mf_pos, n, n), b.rsum(mf_neg, n, n)
        out[f"mfi_{n}"] = 100.0 * sdiv(pos_sum, pos_sum + neg_sum)

        out[f"bb_pctb_{n}"] = sdiv(c - (sma - 2.0 * sd), 4.0 * sd)
        out[f"bb_width_{n}"] = sdiv(4.0 * sd, sma)
        out[f"zscore_ema_{n}"] = sdiv(c - ema, sd)

        hh, ll = b.hh(n), b.ll(n)
        k = sdiv(c - ll, hh - ll)
        d = b.rmean(k, 3, n + 1)
        out[f"stoch_k_{n}"] = k
        out[f"stoch_d_{n}"] = d
        out[f"stoch_slow_{n}"] = b.rmean(d, 3, n + 3)

        sma_tp = b.rmean(tp, n, n - 1)
        out[f"cci_{n}"] = sdiv(tp - sma_tp, 0.015 * b.rmad(tp, n, n - 1))
        out[f"obv_slope_{n}"] = sdiv(b.rsum(obv_step, n, n), b.rsum(v, n, n))

        slow = max(n + 1, round(26 * n / 12))
        sig = max(2, round(9 * n / 12))
        macd = b.mask(ema - b.ema_c(slow), slow - 1)
        signal = b.ema(macd, sig, slow + sig - 2)
        hist = macd - signal
        out[f"macd_{n}"] = sdiv(macd, c)
        out[f"macd_signal_{n}"] = sdiv(signal, c)
        out[f"macd_hist_{n}"] = sdiv(hist, c)
        out[f"macd_hist_z_{n}"] = sdiv(hist, b.std_c(slow))

        slope, r2 = b.linreg(b.logc, n, n - 1)
        out[f"linreg_slope_{n}"] = slope
        out[f"linreg_r2_{n}"] = r2
        out[f"vwap_dist_{n}"] = sdiv(c, sdiv(b.rsum(tpv, n, n - 1), b.rsum(v, n, n - 1))) - 1.0
        out[f"efficiency_{n}"] = sdiv(np.abs(c - c_n), b.rsum(absdc, n, n))
    return {}, out
