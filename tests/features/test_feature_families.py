"""Hand-checked values of each family on tiny constructed series."""

import math

import numpy as np
import pandas as pd
import pytest

from tests.features.conftest import make_bars
from workflow_scripts.features import build_features


def spec(families, lookbacks=(3,), lags=()):
    return {"families": list(families), "lookbacks": list(lookbacks), "lags": list(lags), "dtype": "float32"}


def approx(x):
    return pytest.approx(x, rel=1e-6, abs=1e-7)


# -- candle --------------------------------------------------------------------------------------------------
def test_candle_shape_ratios_and_patterns():
    # bar 0: bearish 10 -> 8; bar 1: bullish 7.5 -> 11 engulfing it; bar 2: o=1 h=3 l=0 c=2; bar 3: doji.
    bars = make_bars(
        close=[8, 11, 2, 2.05], open_=[10, 7.5, 1, 2], high=[10.5, 11.2, 3, 3], low=[7.9, 7.4, 0, 1]
    )
    f = build_features(bars, spec(["candle"]))
    assert f["candle__body_ratio"].iloc[2] == approx(1 / 3)
    assert f["candle__upper_wick_ratio"].iloc[2] == approx(1 / 3)
    assert f["candle__lower_wick_ratio"].iloc[2] == approx(1 / 3)
    assert f["candle__close_location"].iloc[2] == approx(2 / 3)
    assert f["candle__range_pct"].iloc[2] == approx(3 / 2)
    assert f["candle__open_gap_pct"].iloc[1] == approx(7.5 / 8 - 1)
    assert math.isnan(f["candle__open_gap_pct"].iloc[0])  # needs the previous bar
    assert f["candle__bull_engulfing"].tolist()[1:] == [1, 0, 0]
    assert math.isnan(f["candle__bull_engulfing"].iloc[0])
    assert f["candle__doji"].tolist() == [0, 0, 0, 1]
    assert f["candle__bullish"].tolist() == [0, 1, 1, 1]
    # 3-bar frequencies: the first full window is row 2; engulfing reads one bar more (row 3).
    assert math.isnan(f["candle__bullish_freq_3"].iloc[1])
    assert f["candle__bullish_freq_3"].iloc[2] == approx(2 / 3)
    assert math.isnan(f["candle__bull_engulfing_freq_3"].iloc[2])
    assert f["candle__bull_engulfing_freq_3"].iloc[3] == approx(1 / 3)
    assert f["candle__body_ratio_mean_3"].iloc[3] == approx(np.mean([3.5 / 3.8, 1 / 3, 0.05 / 2]))


def test_hammer_and_shooting_star():
    bars = make_bars(close=[10.1, 10.0], open_=[10.0, 10.1], high=[10.15, 10.9], low=[9.0, 9.95])
    f = build_features(bars, spec(["candle"]))
    assert f["candle__hammer"].tolist() == [1, 0]
    assert f["candle__shooting_star"].tolist() == [0, 1]


# -- tech ----------------------------------------------------------------------------------------------------
def test_returns_sma_and_rsi_known_answers():
    close = np.array([10, 11, 10, 11, 12, 11, 13, 12.0])
    f = build_features(make_bars(close), spec(["tech"]))
    assert np.isnan(f["tech__ret_3"].iloc[:3]).all()
    assert f["tech__ret_3"].iloc[3] == approx(11 / 10 - 1)
    assert f["tech__ret_3"].iloc[7] == approx(12 / 12 - 1)
    assert f["tech__sma_dist_3"].iloc[2] == approx(10 / np.mean([10, 11, 10]) - 1)
    # Wilder RSI(3): gains and losses smoothed with alpha 1/3, seeded by the first change.
    diff = np.diff(close)
    g, lo = max(diff[0], 0), max(-diff[0], 0)
    rsi = [np.nan] * 3
    for i, d in enumerate(diff[1:], start=2):
        g = g + (max(d, 0) - g) / 3
        lo = lo + (max(-d, 0) - lo) / 3
        if i >= 3:
            rsi.append(100 * g / (g + lo))
    np.testing.assert_allclose(f["tech__rsi_3"], rsi, rtol=1e-6)
    # Efficiency ratio at row 6: |13 - 11| / (|12 - 11| + |11 - 12| + |13 - 11|)
    assert f["tech__efficiency_3"].iloc[6] == approx(2 / 4)
    assert f["tech__efficiency_3"].iloc[7] == approx(0.0)


def test_rsi_extremes_and_bollinger():
    up = build_features(make_bars(np.arange(1, 30, dtype=float)), spec(["tech"], [5]))
    assert up["tech__rsi_5"].iloc[5:].eq(100).all()
    geometric = build_features(make_bars(100 * np.exp(0.01 * np.arange(12))), spec(["tech"], [5]))
    np.testing.assert_allclose(geometric["tech__linreg_slope_5"].iloc[4:], 0.01, rtol=1e-5)
    np.testing.assert_allclose(geometric["tech__linreg_r2_5"].iloc[4:], 1.0, rtol=1e-5)
    assert geometric["tech__linreg_slope_5"].isna().iloc[:4].all()
    close = np.array([1, 2, 3, 4, 5, 6.0])
    f = build_features(make_bars(close), spec(["tech"], [5]))
    w = close[1:]
    sd = w.std()
    assert f["tech__bb_pctb_5"].iloc[5] == approx((6 - (w.mean() - 2 * sd)) / (4 * sd))
    assert f["tech__bb_width_5"].iloc[5] == approx(4 * sd / w.mean())
    assert f["tech__stoch_k_5"].iloc[5] == approx(1.0)


def test_ema_distance_is_adjust_false_ema():
    close = np.array([10, 12, 11, 13, 14, 12.0])
    f = build_features(make_bars(close), spec(["tech"]))
    ema = [close[0]]
    for c in close[1:]:
        ema.append(ema[-1] + 0.5 * (c - ema[-1]))  # span 3 -> alpha 2 / (3 + 1)
    assert np.isnan(f["tech__ema_dist_3"].iloc[:2]).all()
    np.testing.assert_allclose(f["tech__ema_dist_3"].iloc[2:], close[2:] / np.array(ema[2:]) - 1, rtol=1e-5)


# -- vol -----------------------------------------------------------------------------------------------------
def test_volatility_estimators_known_answers():
    close = np.array([100, 101, 99, 102, 103, 101.0])
    high, low = close * 1.01, close * 0.98
    f = build_features(make_bars(close, high=high, low=low), spec(["vol"]))
    r = np.diff(np.log(close))
    assert math.isnan(f["vol__std_3"].iloc[2])  # 3 returns need 3 earlier bars
    assert f["vol__std_3"].iloc[3] == approx(np.std(r[:3]))
    assert f["vol__std_3"].iloc[5] == approx(np.std(r[2:5]))
    pk = math.sqrt(np.mean(np.log(high / low)[3:6] ** 2) / (4 * math.log(2)))
    assert f["vol__parkinson_3"].iloc[5] == approx(pk)
    assert f["vol__abs_ret_3"].iloc[5] == approx(np.mean(np.abs(r[2:5])))


def test_atr_and_skew():
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 40)))
    f = build_features(make_bars(close), spec(["vol"], [8]))
    r = pd.Series(np.log(close)).diff()
    w = r.iloc[31:39].to_numpy()
    m = w.mean()
    skew = np.mean((w - m) ** 3) / np.mean((w - m) ** 2) ** 1.5
    assert f["vol__skew_8"].iloc[38] == pytest.approx(skew, rel=1e-4)
    assert "vol__skew_3" not in build_features(make_bars(close), spec(["vol"], [3])).columns
    assert f["vol__atr_8"].notna().iloc[7:].all() and f["vol__atr_8"].isna().iloc[:7].all()


# -- struct --------------------------------------------------------------------------------------------------
def test_structure_known_answers():
    high = np.array([5, 7, 6, 7, 4.0])
    low = np.array([4, 5, 3, 5, 3.5])
    close = np.array([4.5, 6, 5, 6.5, 3.8])
    f = build_features(
        make_bars(close, high=high, low=low, open_=close, volume=[1, 2, 3, 4, 10]), spec(["struct"])
    )
    assert f["struct__dist_high_3"].iloc[3] == approx(6.5 / 7 - 1)
    assert f["struct__dist_low_3"].iloc[3] == approx(6.5 / 3 - 1)
    assert f["struct__bars_since_high_3"].iloc[3] == 0  # tie 7 at rows 1 and 3: the most recent
    assert f["struct__bars_since_high_3"].iloc[4] == 1
    assert f["struct__bars_since_low_3"].iloc[4] == 2
    assert f["struct__dist_prev_high_3"].iloc[4] == approx(3.8 / 7 - 1)
    assert f["struct__hh_frac_3"].iloc[3] == approx(2 / 3)  # 7>5, 6<7, 7>6
    assert f["struct__close_range_pos_3"].iloc[4] == approx(0.0)
    assert f["struct__volume_ratio_3"].iloc[4] == approx(10 / np.mean([3, 4, 10]))


# -- time ----------------------------------------------------------------------------------------------------
def test_calendar_features_and_gap_counters():
    ts = pd.DatetimeIndex(
        ["2024-01-06 06:00", "2024-01-06 07:00", "2024-01-06 10:00", "2024-01-08 00:00"], tz="UTC"
    )  # Saturday 06:00, 07:00, gap of 2 h, gap of 37 h, Monday 00:00
    f = build_features(make_bars([1, 2, 3, 4.0], timestamps=ts), spec(["time"]))
    assert f["time__hour_sin"].iloc[0] == approx(1.0)
    assert f["time__weekend"].tolist() == [1, 1, 1, 0]
    assert f["time__week_open"].tolist() == [0, 0, 0, 1]
    assert f["time__bars_since_gap"].tolist() == [0, 1, 0, 0]
    assert f["time__last_gap_hours"].tolist() == [0, 0, 2, 37]
    assert f["time__dow_cos"].iloc[3] == approx(1.0)
