"""add_cross_coin: prefixes, sorted symbol order, left join on own timestamps, NaN where the other has no
bar."""

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.features import add_cross_coin


def table(ts, values, cols=("tech__a", "vol__b")):
    data = {"timestamp": pd.DatetimeIndex(ts, tz="UTC").as_unit("ns")}
    for k, c in enumerate(cols):
        data[c] = (np.asarray(values, dtype=np.float64) + k).astype(np.float32)
    return pd.DataFrame(data)


def test_alignment_order_and_names():
    hours = pd.date_range("2024-01-01", periods=6, freq="h")
    own = table(hours, [0, 1, 2, 3, 4, 5])
    late = table(hours[3:], [30, 40, 50])  # lists at hour 3
    gappy = table(hours[[0, 1, 4, 5]].append(pd.DatetimeIndex(["2024-02-01"])), [7, 8, 9, 10, 11])
    own_before = own.copy(deep=True)
    out = add_cross_coin(own, {"ZZZUSDT": late, "AAAUSDT": gappy})
    pd.testing.assert_frame_equal(own, own_before)
    assert list(out.columns) == [
        "timestamp",
        "tech__a",
        "vol__b",
        "AAAUSDT__tech__a",
        "AAAUSDT__vol__b",
        "ZZZUSDT__tech__a",
        "ZZZUSDT__vol__b",
    ]
    assert out["timestamp"].equals(own["timestamp"])
    assert (out.dtypes.iloc[1:] == np.float32).all()
    np.testing.assert_array_equal(out["ZZZUSDT__tech__a"], [np.nan, np.nan, np.nan, 30, 40, 50])
    np.testing.assert_array_equal(out["AAAUSDT__vol__b"], [8, 9, np.nan, np.nan, 10, 11])
    np.testing.assert_array_equal(out["tech__a"], own["tech__a"])


def test_no_others_and_inf_cleanup():
    hours = pd.date_range("2024-01-01", periods=3, freq="h")
    own = table(hours, [0, np.inf, 2])
    out = add_cross_coin(own, {})
    assert list(out.columns) == list(own.columns)
    assert np.isnan(out["tech__a"].iloc[1])


@pytest.mark.parametrize("sym", ["btcusdt", "../x", "A", "BTC/USDT"])
def test_bad_symbols_refused(sym):
    hours = pd.date_range("2024-01-01", periods=3, freq="h")
    with pytest.raises(ValueError, match="symbol"):
        add_cross_coin(table(hours, [0, 1, 2]), {sym: table(hours, [0, 1, 2])})


def test_duplicate_timestamps_refused():
    hours = pd.date_range("2024-01-01", periods=3, freq="h")
    dup = table(hours[[0, 0, 1]], [0, 1, 2])
    with pytest.raises(ValueError, match="duplicate"):
        add_cross_coin(table(hours, [0, 1, 2]), {"ETHUSDT": dup})


def test_real_tables_align(raw_bars):
    from workflow_scripts.config.schema import config_group
    from workflow_scripts.features import build_features

    spec = {**config_group("features"), "lookbacks": [5]}
    btc = build_features(raw_bars["BTCUSDT"].iloc[:400], spec)
    eth = build_features(raw_bars["ETHUSDT"].iloc[100:300], spec)
    out = add_cross_coin(btc, {"ETHUSDT": eth})
    assert out.shape == (400, 1 + 2 * (btc.shape[1] - 1))
    np.testing.assert_array_equal(
        out["ETHUSDT__vol__std_5"].iloc[100:300].to_numpy(), eth["vol__std_5"].to_numpy()
    )
    assert out.filter(like="ETHUSDT__").iloc[list(range(100)) + list(range(300, 400))].isna().all().all()
