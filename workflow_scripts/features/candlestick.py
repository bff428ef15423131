"""Candlestick family (`candle__*`): shape of each bar and how often patterns occurred over the last n bars.

Per bar (static, known at the bar's close): signed body / range, |body| / range, upper and lower wick / range,
close location in the range, range and body in percent of price, open vs previous close, and 0/1 pattern flags
(doji, hammer, shooting star, marubozu, spinning top, bullish / bearish bar, bullish / bearish engulfing,
bullish / bearish harami, inside and outside bar, three white soldiers, three black crows). Flags that look at
earlier bars are NaN until those bars exist in the segment. Per lookback n: the frequency of each pattern over
the last n bars and the mean of the shape ratios. A halt bar (o = h = l = c) has NaN ratios but well-defined
flags (it counts as a doji). Gap rule: see `_core`.
"""

from __future__ import annotations

import numpy as np

from ._core import Bars, sdiv

RATIOS = ("body_ratio", "upper_wick_ratio", "lower_wick_ratio", "close_location", "range_pct")


def build(b: Bars, lookbacks: list[int]) -> tuple[dict, dict]:
    o, h, l, c = b.o, b.h, b.l, b.c
    body = c - o
    abody = np.abs(body)
    rng = b.rng
    top = np.fmax(o, c)
    bot = np.fmin(o, c)
    upper = h - top
    lower = bot - l

    static = {
        "body_ratio": sdiv(body, rng),
        "abs_body_ratio": sdiv(abody, rng),
        "upper_wick_ratio": sdiv(upper, rng),
        "lower_wick_ratio": sdiv(lower, rng),
        "close_location": sdiv(c - l, rng),
        "range_pct": sdiv(rng, c),
        "body_pct": sdiv(body, o),
        "open_gap_pct": sdiv(o - b.prev_c, b.prev_c),
    }

    prev_o, prev_c = b.shift(o, 1), b.prev_c
    prev_top, prev_bot = np.fmax(prev_o, prev_c), np.fmin(prev_o, prev_c)
    prev_h, prev_l = b.shift(h, 1), b.shift(l, 1)
    up, down = c > o, c < o
    prev_up, prev_down = prev_c > prev_o, prev_c < prev_o
    c1, c2 = prev_c, b.shift(c, 2)
    o1, o2 = prev_o, b.shift(o, 2)

    def flag(cond, need=0):
        return b.mask(cond.astype(np.float64), need)

    patterns = {
        "doji": flag(abody <= 0.1 * rng),
        "hammer": flag((lower >= 2 * abody) & (upper <= 0.25 * rng) & (rng > 0)),
        "shooting_star": flag((upper >= 2 * abody) & (lower <= 0.25 * rng) & (rng > 0)),
        "marubozu": flag((abody >= 0.9 * rng) & (rng > 0)),
        "spinning_top": flag((abody > 0.1 * rng) & (abody <= 0.35 * rng) & (upper > abody) & (lower > abody)),
        "bullish": flag(up),
        "bearish": flag(down),
        "bull_engulfing": flag(
            up & prev_down & (top >= prev_top) & (bot <= prev_bot) & (abody > (prev_top - prev_bot)), 1
        ),
        "bear_engulfing": flag(
            down & prev_up & (top >= prev_top) & (bot <= prev_bot) & (abody > (prev_top - prev_bot)), 1
        ),
        "bull_harami": flag(up & prev_down & (top < prev_top) & (bot > prev_bot), 1),
        "bear_harami": flag(down & prev_up & (top < prev_top) & (bot > prev_bot), 1),
        "inside_bar": flag((h < prev_h) & (l > prev_l), 1),
        "outside_bar": flag((h > prev_h) & (l < prev_l), 1),
        "three_white": flag(up & (c1 > o1) & (c2 > o2) & (c > c1) & (c1 > c2), 2),
        "three_black": flag(down & (c1 < o1) & (c2 < o2) & (c < c1) & (c1 < c2), 2),
    }
    needs = {
        "bull_engulfing": 1,
        "bear_engulfing": 1,
        "bull_harami": 1,
        "bear_harami": 1,
        "inside_bar": 1,
        "outside_bar": 1,
        "three_white": 2,
        "three_black": 2,
    }
    static.update(patterns)

    rolled = {}
    for n in lookbacks:
        for name, x in patterns.items():
            rolled[f"{name}_freq_{n}"] = b.rmean(x, n, n - 1 + needs.get(name, 0))
        for name in RATIOS:
            rolled[f"{name}_mean_{n}"] = b.rmean(static[name], n, n - 1)
    return static, rolled
