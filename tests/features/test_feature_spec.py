"""Spec validation, feature counts, names, dtypes and hygiene of build_features."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from workflow_scripts.config.schema import config_group
from workflow_scripts.features import (
    build_features,
    feature_count,
    feature_names,
    validate_spec,
)

CONFIG = Path(__file__).resolve().parents[2] / "config" / "features"
NAME = re.compile(r"^[A-Za-z0-9_]+$")
DEFAULT_SPEC = config_group("features")
SEED_SCALE_SPEC = config_group("features", "seed_scale")
FAMILY = re.compile(r"^(candle|tech|time|struct|vol)__[A-Za-z0-9_]+$")


@pytest.mark.parametrize(
    "change, key",
    [
        ({"families": ["candle", "price"]}, "families"),
        ({"families": []}, "families"),
        ({"families": ["vol", "vol"]}, "families"),
        ({"lookbacks": []}, "lookbacks"),
        ({"lookbacks": [2, 5]}, "lookbacks"),
        ({"lookbacks": [5, 5]}, "lookbacks"),
        ({"lookbacks": [5.0]}, "lookbacks"),
        ({"lookbacks": [True, 5]}, "lookbacks"),
        ({"lookbacks": "5"}, "lookbacks"),
        ({"lags": [0]}, "lags"),
        ({"lags": [1, 1]}, "lags"),
        ({"lags": None}, "lags"),
        ({"dtype": "float64"}, "dtype"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_spec_names_the_key(change, key):
    with pytest.raises(ValueError, match=f"'{key}'"):
        validate_spec({**DEFAULT_SPEC, **change})


@pytest.mark.parametrize("key", ["families", "lookbacks", "lags", "dtype"])
def test_missing_key_is_named(key):
    spec = {k: v for k, v in DEFAULT_SPEC.items() if k != key}
    with pytest.raises(ValueError, match=f"'{key}'.*missing"):
        build_features(pd.DataFrame(), spec)


def test_group_files_are_valid_specs():
    for option in ("default", "seed_scale"):
        validate_spec(yaml.safe_load((CONFIG / f"{option}.yaml").read_text()))


def _check_table(table, bars, expected_count):
    assert list(table.columns[:1]) == ["timestamp"]
    assert table["timestamp"].equals(bars["timestamp"].reset_index(drop=True))
    names = list(table.columns[1:])
    assert len(names) == expected_count == len(set(names))
    assert all(NAME.match(n) and FAMILY.match(n) for n in names)
    assert (table.dtypes.iloc[1:] == np.float32).all()
    values = table.iloc[:, 1:].to_numpy()
    assert not np.isinf(values).any()
    return values


def test_default_spec_on_real_bars(raw_bars):
    bars = raw_bars["BTCUSDT"]
    before = bars.copy(deep=True)
    table = build_features(bars, DEFAULT_SPEC)
    pd.testing.assert_frame_equal(bars, before)  # input untouched
    count = feature_count(DEFAULT_SPEC)
    assert count >= 500
    values = _check_table(table, bars, count)
    assert table._mgr.nblocks == 2  # one float block + timestamp: no fragmentation
    # After the longest warm-up (vol_ratio_233 reads 4 * 233 bars) and before the gap at row 1981, nearly
    # every feature has values (the rest: ratios on the halt bar, row 1980).
    late = values[1000:1981]
    assert np.isnan(late).mean() < 0.01
    assert not np.isnan(late).all(axis=0).any()


def test_seed_scale_spec_count(raw_bars):
    bars = raw_bars["ETHUSDT"].iloc[:600]
    table = build_features(bars, SEED_SCALE_SPEC)
    assert feature_count(SEED_SCALE_SPEC) >= 5000
    _check_table(table, bars, feature_count(SEED_SCALE_SPEC))
    lagged = [c for c in table.columns if c.endswith("_lag3")]
    src = [c[: -len("_lag3")] for c in lagged]
    assert len(lagged) > 1000 and all(s in table.columns for s in src)
    # A lag is the same column three bars down (no gap in these 600 rows).
    np.testing.assert_array_equal(table[lagged].to_numpy()[3:], table[src].to_numpy()[:-3])


def test_names_are_deterministic_and_family_order_canonical():
    spec = {**DEFAULT_SPEC, "families": ["vol", "time", "candle"], "lookbacks": [21, 5], "lags": [2]}
    names = feature_names(spec)
    assert names == feature_names({**spec, "families": ["candle", "time", "vol"], "lookbacks": [5, 21]})
    fams = [n.split("__")[0] for n in names]
    assert fams == sorted(fams, key=["candle", "time", "vol"].index)
    assert "vol__std_21_lag2" in names and "candle__doji_freq_5_lag2" in names
    assert not any(
        n.startswith("time__") and "_lag" in n for n in names
    )  # calendar features have no lookback


def test_halts_and_flat_series_give_nan_not_inf():
    n = 300
    bars = pd.concat(
        [
            pd.DataFrame({"open": 5.0, "high": 5.0, "low": 5.0, "close": 5.0, "volume": 0.0}, index=range(n)),
        ]
    )
    bars.insert(0, "timestamp", pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"))
    table = build_features(bars, DEFAULT_SPEC)
    assert not np.isinf(table.iloc[:, 1:].to_numpy()).any()
    assert table["candle__doji"].eq(1).all()
    assert table["tech__rsi_13"].isna().all()  # no gains, no losses: undefined, not 0/0 = inf


def test_bad_bars_are_refused():
    with pytest.raises(ValueError, match="close"):
        build_features(
            pd.DataFrame({"timestamp": pd.date_range("2024", periods=3, freq="h", tz="UTC")}), DEFAULT_SPEC
        )
    ts = pd.date_range("2024", periods=3, freq="h", tz="UTC")[::-1]
    bars = pd.DataFrame({"timestamp": ts, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0})
    with pytest.raises(ValueError, match="sorted"):
        build_features(bars, DEFAULT_SPEC)
