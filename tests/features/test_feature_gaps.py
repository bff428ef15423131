"""Gap rule: no window spans an outage; after a gap every feature equals its value on the post-gap bars
alone."""

import numpy as np
import pandas as pd

from tests.features.conftest import make_bars
from workflow_scripts.config.schema import config_group
from workflow_scripts.features import build_features

DEFAULT_SPEC = config_group("features")

SPEC = {**DEFAULT_SPEC, "lookbacks": [3, 13, 34], "lags": [2]}
GAP_AT = 700  # first bar after the outage, in the gapped frame


def gapped(raw_bars):
    bars = raw_bars["ETHUSDT"].iloc[:1600]
    return pd.concat([bars.iloc[:GAP_AT], bars.iloc[GAP_AT + 10 :]], ignore_index=True)  # 10 bars missing


def test_windows_refill_after_gap(raw_bars):
    bars = gapped(raw_bars)
    f = build_features(bars, SPEC)
    assert f["time__bars_since_gap"].iloc[GAP_AT] == 0 and f["time__last_gap_hours"].iloc[GAP_AT] == 10
    # name -> bars of history needed (value at row GAP_AT + need is the first one after the gap)
    needs = {
        "tech__sma_dist_13": 12,
        "tech__ret_13": 13,
        "vol__std_34": 34,
        "struct__dist_high_34": 33,
        "candle__bull_engulfing_freq_3": 3,
        "tech__ema_dist_13": 12,
        "tech__rsi_13": 13,
        "vol__atr_13": 12,
        "vol__ewm_vol_13": 13,
        "tech__macd_3": 5,
        "vol__std_13_lag2": 15,
        "vol__vol_ratio_3": 12,
    }
    for name, need in needs.items():
        col = f[name].to_numpy()
        assert np.isnan(col[GAP_AT : GAP_AT + need]).all(), name
        assert not np.isnan(col[GAP_AT + need]), name
        assert not np.isnan(col[GAP_AT - 1]), name  # the pre-gap segment is long enough


def test_post_gap_values_equal_segment_alone(raw_bars):
    bars = gapped(raw_bars)
    full = build_features(bars, SPEC).iloc[GAP_AT:].reset_index(drop=True)
    alone = build_features(bars.iloc[GAP_AT:].reset_index(drop=True), SPEC)
    cols = [c for c in full.columns[1:] if c != "time__last_gap_hours"]
    # Same NaN pattern everywhere, values equal up to float rounding of running sums.
    np.testing.assert_allclose(full[cols].to_numpy(), alone[cols].to_numpy(), rtol=2e-4, atol=1e-6)
    # EWM-type features restart exactly, so they agree to the last float32 bit.
    for name in ("tech__ema_dist_13", "tech__rsi_13", "vol__atr_13", "vol__ewm_vol_34", "tech__macd_hist_13"):
        assert np.array_equal(full[name].to_numpy(), alone[name].to_numpy(), equal_nan=True), name


def test_gap_vs_contiguous_series_differs():
    # Same closes: contiguous vs with a 5-hour outage before row 4. The 3-bar return at rows 4-6 would read
    # across the outage, so it is NaN there; at row 7 it is defined again.
    close = np.array([1, 2, 3, 4, 5, 6, 7, 8.0])
    ts = pd.DatetimeIndex(
        pd.date_range("2024-01-01", periods=4, freq="h").tolist()
        + pd.date_range("2024-01-01 08:00", periods=4, freq="h").tolist(),
        tz="UTC",
    )
    spec = {**DEFAULT_SPEC, "lookbacks": [3]}
    cont = build_features(make_bars(close), spec)
    gap = build_features(make_bars(close, timestamps=ts), spec)
    assert cont["tech__ret_3"].iloc[4:7].notna().all()
    assert gap["tech__ret_3"].iloc[4:7].isna().all()
    assert gap["tech__ret_3"].iloc[7] == cont["tech__ret_3"].iloc[7]
