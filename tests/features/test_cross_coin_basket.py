"""The bounded cross-coin design (features.cross_coin, workflow_scripts/features/cross_coin.py): basket
columns without the coin itself, market factors over the basket only, the listing-date rule, causality,
all_pairs unchanged, and the config checks."""

import numpy as np
import pandas as pd
import pytest

from tests.features.conftest import randomise_after
from tests.features.test_feature_causality import assert_prefix_unchanged
from workflow_scripts.config import schema as swcfg
from workflow_scripts.config.schema import config_group
from workflow_scripts.features import (
    add_cross_coin,
    build_features,
    cross_coin_table,
    reference_coins,
    validate_spec,
)
from workflow_scripts.features.cross_coin import basket_factors, select_columns

FEATURES = config_group("features")
CC = FEATURES["cross_coin"]
BASKET = {**CC, "mode": "basket", "basket": ["BTCUSDT", "ETHUSDT"], "columns": "all", "factors": []}
FACTORS = {**BASKET, "factors": ["mean", "dispersion", "relative"], "factor_inputs": ["tech__ret"]}
SMALL = {**{k: v for k, v in FEATURES.items() if k != "cross_coin"}, "lookbacks": [5, 21], "lags": []}
UNIVERSE = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def table(ts, values, cols=("tech__ret_5", "vol__std_5")):
    data = {"timestamp": pd.DatetimeIndex(ts, tz="UTC").as_unit("ns")}
    for k, c in enumerate(cols):
        data[c] = (np.asarray(values, dtype=np.float64) + 10 * k).astype(np.float32)
    return pd.DataFrame(data)


@pytest.fixture(scope="module")
def base(raw_bars):
    return {s: build_features(b.iloc[:1500], SMALL) for s, b in raw_bars.items()}


def test_reference_coins_exclude_the_coin_and_ignore_the_rest_of_the_universe():
    assert reference_coins("BTCUSDT", UNIVERSE, BASKET) == ["ETHUSDT"]
    assert reference_coins("ETHUSDT", UNIVERSE, BASKET) == ["BTCUSDT"]
    assert reference_coins("SOLUSDT", UNIVERSE, BASKET) == ["BTCUSDT", "ETHUSDT"]
    # A coin outside the basket is read by nobody: a bigger universe changes no coin's references.
    assert reference_coins("SOLUSDT", [*UNIVERSE, "XRPUSDT", "ADAUSDT"], BASKET) == ["BTCUSDT", "ETHUSDT"]
    assert reference_coins("BTCUSDT", UNIVERSE, {**BASKET, "mode": "all_pairs"}) == ["ETHUSDT", "SOLUSDT"]


def test_a_basket_coin_outside_the_universe_is_named():
    with pytest.raises(ValueError, match=r"features\.cross_coin\.basket: ETHUSDT not in universe\.symbols"):
        reference_coins("SOLUSDT", ["BTCUSDT", "SOLUSDT"], BASKET)
    # all_pairs has no basket to check
    assert reference_coins("SOLUSDT", ["BTCUSDT", "SOLUSDT"], {**BASKET, "mode": "all_pairs"}) == ["BTCUSDT"]


def test_basket_tables_hold_the_basket_never_the_coin_itself(base):
    sol = cross_coin_table("SOLUSDT", base["SOLUSDT"], {s: base[s] for s in ("BTCUSDT", "ETHUSDT")}, BASKET)
    btc = cross_coin_table("BTCUSDT", base["BTCUSDT"], {"ETHUSDT": base["ETHUSDT"]}, BASKET)
    own = list(base["BTCUSDT"].columns[1:])
    assert list(btc.columns) == ["timestamp", *own, *(f"ETHUSDT__{c}" for c in own)]
    assert not any(c.startswith(("BTCUSDT__", "SOLUSDT__")) for c in btc.columns)
    assert sol.shape[1] == 1 + 3 * len(own) and not any(c.startswith("SOLUSDT__") for c in sol.columns)
    # The coin itself among its inputs, or a coin outside the basket, is refused with the expected list.
    with pytest.raises(
        ValueError, match=r"BTCUSDT: cross-coin inputs are \['BTCUSDT', 'ETHUSDT'\], expected"
    ):
        cross_coin_table("BTCUSDT", base["BTCUSDT"], {s: base[s] for s in ("BTCUSDT", "ETHUSDT")}, BASKET)
    with pytest.raises(ValueError, match=r"expected the basket without the coin itself \['ETHUSDT'\]"):
        cross_coin_table("BTCUSDT", base["BTCUSDT"], {s: base[s] for s in ("SOLUSDT", "ETHUSDT")}, BASKET)


def test_all_pairs_mode_is_the_old_table(base):
    others = {s: base[s] for s in ("ETHUSDT", "SOLUSDT")}
    got = cross_coin_table("BTCUSDT", base["BTCUSDT"], others, {**FACTORS, "mode": "all_pairs"})
    pd.testing.assert_frame_equal(got, add_cross_coin(base["BTCUSDT"], others))


def test_basket_columns_are_the_all_pairs_columns(base):
    """Without factors a basket table is a column subset of the all-pairs table, value for value: the live
    prediction path (registry/predictions.py, which builds the all-pairs table) serves basket models."""
    refs = {s: base[s] for s in ("BTCUSDT", "ETHUSDT")}
    basket = cross_coin_table(
        "SOLUSDT", base["SOLUSDT"], refs, {**BASKET, "columns": ["tech__ret", "vol__std_21"]}
    )
    full = add_cross_coin(base["SOLUSDT"], refs)
    assert "BTCUSDT__tech__ret_21" in basket and "BTCUSDT__vol__std_21" in basket
    assert "BTCUSDT__vol__std_5" not in basket and "ETHUSDT__tech__rsi_5" not in basket
    pd.testing.assert_frame_equal(basket, full[list(basket.columns)])


def test_selectors_pick_names_and_stems_and_name_what_matches_nothing():
    cols = [
        "timestamp",
        "tech__ret_5",
        "tech__ret_21",
        "tech__ret_sharpe_5",
        "tech__ret_5_lag1",
        "time__hour_sin",
    ]
    assert select_columns(cols, ["tech__ret"], "t") == ["tech__ret_5", "tech__ret_21", "tech__ret_5_lag1"]
    assert select_columns(cols, ["time__hour_sin", "tech__ret_21"], "t") == ["tech__ret_21", "time__hour_sin"]
    assert select_columns(cols, "all", "t") == cols[1:]
    with pytest.raises(ValueError, match=r"ETHUSDT feature table: cross-coin selector 'vol__std' matches no"):
        select_columns(cols, ["vol__std"], "ETHUSDT feature table")


def test_factors_use_the_basket_at_the_same_bar_and_the_listing_rule():
    hours = pd.date_range("2024-01-01", periods=5, freq="h")
    own = table(hours, [1, 2, 3, 4, 5])  # SOL, not in the basket
    btc = table(hours, [2, 4, np.nan, 8, 10])  # a NaN at hour 2
    eth = table(hours[2:], [0, 2, 6])  # lists at hour 2
    out = basket_factors(
        own, {"BTCUSDT": btc, "ETHUSDT": eth}, ["mean", "dispersion", "relative"], ["tech__ret"]
    )
    assert list(out.columns) == [
        "BASKET__mean__tech__ret_5",
        "BASKET__dispersion__tech__ret_5",
        "BASKET__relative__tech__ret_5",
    ]
    # before ETH lists, the basket is BTC alone: no dispersion from one coin; never a value from ETH's future
    np.testing.assert_allclose(out["BASKET__mean__tech__ret_5"], [2, 4, 0, 5, 8])
    np.testing.assert_allclose(out["BASKET__dispersion__tech__ret_5"], [np.nan, np.nan, np.nan, 3, 2])
    np.testing.assert_allclose(out["BASKET__relative__tech__ret_5"], [-1, -2, 3, -1, -3])
    assert (out.dtypes == np.float32).all()


def test_a_coin_in_the_basket_counts_in_its_own_factors_but_gets_no_copy_of_itself():
    hours = pd.date_range("2024-01-01", periods=3, freq="h")
    btc, eth = table(hours, [1, 2, 3]), table(hours, [3, 2, 1])
    out = cross_coin_table("BTCUSDT", btc, {"ETHUSDT": eth}, FACTORS)
    np.testing.assert_allclose(out["BASKET__mean__tech__ret_5"], [2, 2, 2])
    np.testing.assert_allclose(out["BASKET__relative__tech__ret_5"], [-1, 0, 1])
    assert [c for c in out.columns if c.startswith("ETHUSDT__")] == [
        "ETHUSDT__tech__ret_5",
        "ETHUSDT__vol__std_5",
    ]
    assert not any(c.startswith("BTCUSDT__") for c in out.columns)


def test_late_listings_on_both_sides_leave_nan_before_listing(raw_bars):
    """SOL lists after the basket's start (its table starts later), ETH lists after BTC's: ETH's columns are
    NaN on BTC's rows before ETH's first bar, and SOL's first row holds the basket's values at that bar."""
    btc_bars = raw_bars["BTCUSDT"].iloc[:900]
    eth_bars = raw_bars["ETHUSDT"].iloc[300:900].reset_index(drop=True)
    sol_bars = raw_bars["SOLUSDT"].iloc[500:900].reset_index(drop=True)
    b = {
        s: build_features(x, SMALL)
        for s, x in (("BTCUSDT", btc_bars), ("ETHUSDT", eth_bars), ("SOLUSDT", sol_bars))
    }
    btc = cross_coin_table("BTCUSDT", b["BTCUSDT"], {"ETHUSDT": b["ETHUSDT"]}, FACTORS)
    assert btc.filter(like="ETHUSDT__").iloc[:300].isna().all().all()
    assert btc["ETHUSDT__vol__std_5"].iloc[300:].notna().any()
    # before ETH lists, the factors come from BTC alone: mean = BTC's value, no dispersion
    np.testing.assert_array_equal(
        btc["BASKET__mean__tech__ret_5"].iloc[:300], b["BTCUSDT"]["tech__ret_5"].iloc[:300]
    )
    assert btc["BASKET__dispersion__tech__ret_5"].iloc[:300].isna().all()
    sol = cross_coin_table("SOLUSDT", b["SOLUSDT"], {s: b[s] for s in ("BTCUSDT", "ETHUSDT")}, FACTORS)
    assert len(sol) == 400 and sol["timestamp"].iloc[0] == sol_bars["timestamp"].iloc[0]
    np.testing.assert_array_equal(sol["BTCUSDT__tech__ret_21"], b["BTCUSDT"]["tech__ret_21"].iloc[500:])
    np.testing.assert_array_equal(sol["ETHUSDT__tech__ret_21"], b["ETHUSDT"]["tech__ret_21"].iloc[200:])


@pytest.mark.parametrize("perturbed", ["ETHUSDT", "BTCUSDT", "SOLUSDT"])
def test_basket_features_are_causal(raw_bars, perturbed):
    """Rewriting a coin's bars after time T leaves every coin's cross-coin rows up to T unchanged (basket
    columns and factors), and does change later rows of the tables that read that coin."""
    bars = {s: b.iloc[:1400] for s, b in raw_bars.items()}
    bars["ETHUSDT"] = bars["ETHUSDT"].iloc[200:].reset_index(drop=True)  # ETH lists 200 bars late
    cut = bars["BTCUSDT"]["timestamp"].iloc[1100]

    def upto(frame):  # last row at or before T
        return int((frame["timestamp"] <= cut).sum()) - 1

    def tables(bars_by_symbol):
        b = {s: build_features(x, SMALL) for s, x in bars_by_symbol.items()}
        return {
            s: cross_coin_table(s, b[s], {r: b[r] for r in reference_coins(s, UNIVERSE, FACTORS)}, FACTORS)
            for s in b
        }

    before = tables(bars)
    after = tables(dict(bars, **{perturbed: randomise_after(bars[perturbed], upto(bars[perturbed]), seed=3)}))
    for s in UNIVERSE:
        assert_prefix_unchanged(before[s], after[s], upto(before[s]))

    def moved(s, col):
        t = upto(before[s])
        return not np.array_equal(before[s][col].to_numpy()[t + 10 :], after[s][col].to_numpy()[t + 10 :])

    if perturbed == "SOLUSDT":  # outside the basket: only its own table moves
        assert moved("SOLUSDT", "tech__ret_5")
        for s in ("BTCUSDT", "ETHUSDT"):
            pd.testing.assert_frame_equal(before[s], after[s])
    else:  # a basket coin: every table's factors move, and its copy in every other table
        assert all(moved(s, "BASKET__mean__tech__ret_5") for s in UNIVERSE)
        assert all(moved(s, f"{perturbed}__tech__ret_5") for s in UNIVERSE if s != perturbed)


def test_the_features_spec_carries_cross_coin_without_changing_the_own_build(raw_bars):
    bars = raw_bars["BTCUSDT"].iloc[:300]
    pd.testing.assert_frame_equal(
        build_features(bars, {**SMALL, "cross_coin": FACTORS}), build_features(bars, SMALL)
    )
    assert "cross_coin" not in validate_spec({**SMALL, "cross_coin": FACTORS})


@pytest.mark.parametrize(
    "change, message",
    [
        ({"mode": "top_k"}, r"'cross_coin\.mode': got 'top_k'; allowed: \['basket', 'all_pairs'\]"),
        ({"factors": ["beta"]}, r"'cross_coin\.factors': unknown \['beta'\]"),
        ({"basket": ["BTCUSDT", "BTCUSDT"]}, r"'cross_coin\.basket': duplicates"),
        ({"basket": ["btc"]}, r"'cross_coin\.basket': got \['btc'\]"),
        ({"basket": ["BASKET"]}, r"'BASKET' names the factor columns"),
        (
            {"columns": ["tech__nope"]},
            r"'cross_coin\.columns': 'tech__nope' is not a column this spec builds",
        ),
        ({"columns": ["tech__ret_8"]}, r"'cross_coin\.columns': 'tech__ret_8' is not a column .* \[5, 21\]"),
        ({"columns": []}, r"'cross_coin\.columns': got \[\]"),
        ({"factor_inputs": []}, r"'cross_coin\.factor_inputs': empty, but factors are asked for"),
        ({"factor_inputs": ["vol__nope"]}, r"'cross_coin\.factor_inputs': 'vol__nope' is not a column"),
        ({"colour": 1}, r"'cross_coin\.colour' is unknown"),
    ],
)
def test_bad_cross_coin_config_names_the_key(change, message):
    with pytest.raises(ValueError, match=message):
        validate_spec({**SMALL, "cross_coin": {**FACTORS, **change}})


def test_valid_selectors_pass():
    for sel in (["tech__ret"], ["tech__ret_21"], ["time__hour_sin", "vol__std"]):
        validate_spec({**SMALL, "cross_coin": {**FACTORS, "columns": sel, "factor_inputs": sel}})


@pytest.mark.parametrize(
    "override, expected",
    [
        ("features.cross_coin.mode=pairs", "config key 'features.cross_coin.mode'"),
        ("features.cross_coin.basket=[eth]", "config key 'features.cross_coin.basket[0]'"),
        ("features.cross_coin.columns=[tech__nope]", "'tech__nope' is not a column this spec builds"),
    ],
)
def test_config_errors_name_the_key(override, expected):
    with pytest.raises(swcfg.ConfigError) as err:
        swcfg.compose([override])
    assert expected in str(err.value)


def test_the_all_pairs_rule_slice_is_a_valid_spec(base):
    """rules/features.smk hands all_pairs jobs only the mode (a basket edit then reruns nothing)."""
    others = {s: base[s] for s in ("ETHUSDT", "SOLUSDT")}
    got = cross_coin_table("BTCUSDT", base["BTCUSDT"], others, {"mode": "all_pairs"})
    pd.testing.assert_frame_equal(got, add_cross_coin(base["BTCUSDT"], others))
    assert reference_coins("BTCUSDT", UNIVERSE, {"mode": "all_pairs"}) == ["ETHUSDT", "SOLUSDT"]
    with pytest.raises(ValueError, match=r"'cross_coin\.basket' is missing"):
        reference_coins("BTCUSDT", UNIVERSE, {"mode": "basket"})
