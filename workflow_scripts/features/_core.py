"""Shared machinery of the feature families: gap-aware rolling, shifting and EWM on one coin's bars.

Time semantics: bar t is the hourly candle that OPENS at timestamp t; every value this module returns at row t
is computed from rows 0..t only (strictly causal). A gap is two consecutive timestamps more than one hour
apart; the bars between two gaps form a segment, and `pos` is a bar's position inside its segment (0 for the
first bar after a gap). The gap rule, applied everywhere:

- fixed windows (rolling mean/std/max/min/median, shifts, sliding windows) are computed on the whole series
  and then set to NaN where `pos < need`, `need` being how many bars of history before t the value reads (a
  rolling window of n bars needs n - 1, a one-bar return needs 1, a rolling mean of n one-bar returns needs
  n);
- recursive filters (EMA, Wilder smoothing) are run per segment, so nothing from before a gap is blended in,
  and are also NaN until `pos >= need` (their nominal window has filled).

Hence every value after a gap equals the value computed on the post-gap bars alone (up to float rounding).
Rolling helpers use min_periods=1 and rely on the mask for warm-up, so a NaN input inside a window (a 0/0
ratio on a trading-halt bar, o = h = l = c) is skipped rather than poisoning the whole window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

HOUR_NS = 3_600_000_000_000
NAN = np.nan


def sdiv(a, b) -> np.ndarray:
    """a / b with NaN (never inf) where b == 0 or either side is NaN."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    out = np.full(np.broadcast(a, b).shape, NAN)
    np.divide(a, b, out=out, where=(b != 0) & np.isfinite(b))
    return out


class Bars:
    """One coin's bars as float64 arrays plus the segment bookkeeping and memoised rolling primitives."""

    def __init__(self, bars: pd.DataFrame):
        ts = bars["timestamp"]
        if getattr(ts.dtype, "tz", None) is not None:
            ts = ts.dt.tz_convert("UTC")
        self.timestamp = pd.DatetimeIndex(ts)
        ns = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        self.n = len(ns)
        self.o = bars["open"].to_numpy(dtype=np.float64, copy=True)
        self.h = bars["high"].to_numpy(dtype=np.float64, copy=True)
        self.l = bars["low"].to_numpy(dtype=np.float64, copy=True)
        self.c = bars["close"].to_numpy(dtype=np.float64, copy=True)
        self.v = bars["volume"].to_numpy(dtype=np.float64, copy=True)

        step = np.diff(ns)
        gap_start = np.zeros(self.n, dtype=bool)
        gap_start[1:] = step > HOUR_NS
        self.seg = np.cumsum(gap_start)
        starts = np.flatnonzero(np.r_[True, gap_start[1:]]) if self.n else np.array([], dtype=np.int64)
        self.pos = np.arange(self.n) - starts[self.seg] if self.n else np.array([], dtype=np.int64)
        # Hours missing in the most recent gap before t (0 before the first gap): known at t.
        missing = np.zeros(self.n)
        missing[1:] = np.where(gap_start[1:], step / HOUR_NS - 1, 0.0)
        self.last_gap_hours = missing[starts[self.seg]] if self.n else missing
        self.ns = ns
        self._cache: dict = {}

        self.prev_c = self.shift(self.c, 1)
        self.logc = np.log(self.c)
        self.lr = self.logc - self.shift(self.logc, 1)  # one-bar log return, needs 1
        self.rng = self.h - self.l
        self.tr = np.where(
            np.isnan(self.prev_c),
            self.rng,
            np.fmax(self.rng, np.fmax(np.abs(self.h - self.prev_c), np.abs(self.l - self.prev_c))),
        )
        self.tp = (self.h + self.l + self.c) / 3.0

    # -- masks and shifts ------------------------------------------------------------------------------------
    def mask(self, x, need: int) -> np.ndarray:
        """NaN where fewer than `need` bars of history exist in the current segment."""
        return np.where(self.pos >= need, x, NAN)

    def shift(self, x, k: int) -> np.ndarray:
        """Value k bars earlier in the same segment (NaN otherwise)."""
        x = np.asarray(x, dtype=np.float64)
        out = np.full(self.n, NAN)
        if k < self.n:
            out[k:] = x[: self.n - k]
        return self.mask(out, k)

    # -- rolling windows (whole series, then masked) ---------------------------------------------------------
    def _roll(self, x, n: int):
        return pd.Series(x, copy=False).rolling(n, min_periods=1)

    def rmean(self, x, n: int, need: int) -> np.ndarray:
        return self.mask(self._roll(x, n).mean().to_numpy(), need)

    def rsum(self, x, n: int, need: int) -> np.ndarray:
        return self.mask(self._roll(x, n).sum().to_numpy(), need)

    def rstd(self, x, n: int, need: int) -> np.ndarray:
        return self.mask(self._roll(x, n).std(ddof=0).to_numpy(), need)

    def rmax(self, x, n: int, need: int) -> np.ndarray:
        return self.mask(self._roll(x, n).max().to_numpy(), need)

    def rmin(self, x, n: int, need: int) -> np.ndarray:
        return self.mask(self._roll(x, n).min().to_numpy(), need)

    def rmedian(self, x, n: int, need: int) -> np.ndarray:
        return self.mask(self._roll(x, n).median().to_numpy(), need)

    def linreg(self, y, n: int, need: int) -> tuple[np.ndarray, np.ndarray]:
        """Slope (per bar) and R^2 of the OLS line through the last n values of y (y without NaN).

        The slope is a direct convolution with centred weights, so each value reads its own window only (no
        running sums whose rounding would depend on bars before a gap)."""
        slope = np.full(self.n, NAN)
        if n <= self.n:
            k = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
            var_t = float((k * k).sum())
            # np.convolve flips the kernel: weight k[j] must meet y[t - n + 1 + j].
            slope[n - 1 :] = np.convolve(np.asarray(y, dtype=np.float64), k[::-1], mode="valid") / var_t
            var_y = self.rstd(y, n, 0) ** 2 * n
            r2 = np.minimum(sdiv(slope * slope * var_t, var_y), 1.0)
        else:
            r2 = slope.copy()
        return self.mask(slope, need), self.mask(r2, need)

    def windows(self, x, n: int) -> np.ndarray:
        """Read-only (N - n + 1, n) view of the windows ending at rows n-1..N-1."""
        return sliding_window_view(np.asarray(x, dtype=np.float64), n)

    def bars_since_max(self, x, n: int, need: int) -> np.ndarray:
        """Bars since the most recent maximum of x over the last n bars (0 = this bar)."""
        out = np.full(self.n, NAN)
        if n <= self.n:
            out[n - 1 :] = self.windows(x, n)[:, ::-1].argmax(axis=1)
        return self.mask(out, need)

    def bars_since_min(self, x, n: int, need: int) -> np.ndarray:
        out = np.full(self.n, NAN)
        if n <= self.n:
            out[n - 1 :] = self.windows(x, n)[:, ::-1].argmin(axis=1)
        return self.mask(out, need)

    def rmad(self, x, n: int, need: int) -> np.ndarray:
        """Rolling mean absolute deviation around the window mean (as in CCI), in chunks to bound memory."""
        out = np.full(self.n, NAN)
        if n <= self.n:
            w = self.windows(x, n)
            res = np.empty(w.shape[0])
            step = max(1, 2_000_000 // n)
            for lo in range(0, w.shape[0], step):  # chunks of rows, not a loop per bar
                blk = w[lo : lo + step]
                res[lo : lo + step] = np.abs(blk - blk.mean(axis=1, keepdims=True)).mean(axis=1)
            out[n - 1 :] = res
        return self.mask(out, need)

    # -- recursive filters, run per segment -----------------------------------------------------------------
    def _ewm_mean(self, x, **kw) -> np.ndarray:
        s = pd.Series(x, copy=False)
        if self.n == 0 or self.seg[-1] == 0:
            return s.ewm(**kw).mean().to_numpy()
        # Segments are contiguous and increasing, so the grouped result is already in row order.
        return s.groupby(self.seg, sort=False).ewm(**kw).mean().to_numpy()

    def ema(self, x, span: int, need: int) -> np.ndarray:
        return self.mask(self._ewm_mean(x, span=span, adjust=False), need)

    def wilder(self, x, n: int, need: int) -> np.ndarray:
        return self.mask(self._ewm_mean(x, alpha=1.0 / n, adjust=False), need)

    # -- memoised primitives reused across families ---------------------------------------------------------
    def memo(self, key, fn):
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def sma_c(self, n):
        return self.memo(("sma_c", n), lambda: self.rmean(self.c, n, n - 1))

    def std_c(self, n):
        return self.memo(("std_c", n), lambda: self.rstd(self.c, n, n - 1))

    def ema_c(self, n):
        return self.memo(("ema_c", n), lambda: self.ema(self.c, n, n - 1))

    def hh(self, n):
        return self.memo(("hh", n), lambda: self.rmax(self.h, n, n - 1))

    def ll(self, n):
        return self.memo(("ll", n), lambda: self.rmin(self.l, n, n - 1))

    def std_lr(self, n):
        """Population std of the last n one-bar log returns (needs n bars of history)."""
        return self.memo(("std_lr", n), lambda: self.rstd(self.lr, n, n))
