import numpy as np
import pytest

from workflow_scripts.evaluation.costs import (
    ConfigCostProvider,
    CostError,
    CostProvider,
    cost_snapshot,
    costs_from_snapshot,
    round_trip_bps,
    side_costs_bps,
    slippage_bps,
)
from workflow_scripts.evaluation.trading_rule import apply_costs, bar_returns

TABLE = {
    "default": {
        "taker_fee_bps": 10.0,
        "maker_fee_bps": 2.0,
        "half_spread_bps": 3.0,
        "slippage": {"base_bps": 1.0, "vol_coef": 0.0, "max_bps": 25.0},
    },
    "symbols": {"BTCUSDT": {"half_spread_bps": 0.5}, "XRPUSDT": {"slippage": {"vol_coef": 0.1}}},
}


def test_default_and_override_merge():
    p = ConfigCostProvider(TABLE)
    assert isinstance(p, CostProvider)
    btc, eth, xrp = p.costs_for("BTCUSDT"), p.costs_for("ETHUSDT"), p.costs_for("XRPUSDT")
    assert btc.half_spread_bps == 0.5 and btc.taker_fee_bps == 10.0
    assert eth.half_spread_bps == 3.0
    # a nested override changes only its key, the rest of the slippage block comes from the default
    assert xrp.slippage.vol_coef == 0.1 and xrp.slippage.base_bps == 1.0 and xrp.slippage.max_bps == 25.0


def test_missing_symbol_without_default_names_the_symbol():
    p = ConfigCostProvider({"symbols": {"BTCUSDT": TABLE["default"]}})
    with pytest.raises(CostError, match="DOGEUSDT"):
        p.costs_for("DOGEUSDT")


def test_bad_entry_fails_at_construction_naming_symbol_and_key():
    bad = {"default": TABLE["default"], "symbols": {"SOLUSDT": {"taker_fee_bps": -1}}}
    with pytest.raises(CostError, match="SOLUSDT.*taker_fee_bps"):
        ConfigCostProvider(bad)
    with pytest.raises(CostError, match="unknown key"):
        ConfigCostProvider({"default": TABLE["default"] | {"fee": 1}})


def test_snapshot_round_trip_and_json_plain():
    import json

    p = ConfigCostProvider(TABLE)
    snap = cost_snapshot(p, "BTCUSDT")
    assert json.loads(json.dumps(snap)) == snap
    assert costs_from_snapshot(snap) == p.costs_for("BTCUSDT")


def test_slippage_model_scales_with_volatility_and_caps():
    c = ConfigCostProvider(TABLE).costs_for("XRPUSDT")  # base 1, coef 0.1, cap 25
    sig = np.array([0.0, 0.01, 0.05, np.nan])
    # 1 + 0.1 * sigma * 1e4 -> 1, 11, min(25, 51), nan sigma counts as 0
    np.testing.assert_allclose(slippage_bps(c, sig), [1.0, 11.0, 25.0, 1.0])
    entry, _ = side_costs_bps(c, sig)
    np.testing.assert_allclose(entry, 10.0 + 3.0 + np.array([1.0, 11.0, 25.0, 1.0]))
    np.testing.assert_allclose(round_trip_bps(c, sig), 2 * entry)


def test_maker_orders_pay_maker_fee():
    p = ConfigCostProvider({"default": TABLE["default"] | {"entry_order": "maker"}})
    entry, exit_ = side_costs_bps(p.costs_for("ETHUSDT"), None)
    assert float(entry[0]) == 2.0 + 3.0 + 1.0 and float(exit_[0]) == 10.0 + 3.0 + 1.0


def _hand_trades():
    # three trades on a 10-bar series; gross returns from the prices
    close = np.array([100.0, 101.0, 103.0, 102.0, 104.0, 105.0, 103.0, 101.0, 102.0, 100.0])
    entry, exit_ = np.array([0, 3, 6]), np.array([2, 5, 8])
    d = np.array([1, 1, -1])
    logret = np.log(close[exit_] / close[entry])
    return close, {
        "row": np.arange(3),
        "entry_pos": entry,
        "exit_pos": exit_,
        "direction": d,
        "gross_ret": d * np.expm1(logret),
    }


def test_costs_change_each_trade_by_exactly_the_round_trip():
    _, trades = _hand_trades()
    c = ConfigCostProvider(TABLE).costs_for("BTCUSDT")  # 10 fee + 0.5 spread + 1 slippage = 11.5 bps per side
    out = apply_costs(trades, c)
    # long 100->103, long 102->105, short 103->102
    np.testing.assert_allclose(trades["gross_ret"], [3 / 100, 3 / 102, 1 / 103], rtol=1e-12)
    np.testing.assert_allclose(out["gross_ret"] - out["net_ret"], np.full(3, 23.0 / 1e4), rtol=0, atol=1e-15)
    assert out["net_ret"].sum() == pytest.approx(trades["gross_ret"].sum() - 3 * 0.0023, abs=1e-15)


def test_bar_returns_compound_exactly_to_each_trade():
    close, trades = _hand_trades()
    out = apply_costs(trades, ConfigCostProvider(TABLE).costs_for("ETHUSDT"))
    net_bars = bar_returns(out, close, 0, len(close))
    gross_bars = bar_returns(out, close, 0, len(close), net=False)
    for j in range(3):
        a, b = out["entry_pos"][j], out["exit_pos"][j]
        assert np.prod(1 + net_bars[a : b + 1]) - 1 == pytest.approx(out["net_ret"][j], abs=1e-14)
        assert np.prod(1 + gross_bars[a : b + 1]) - 1 == pytest.approx(out["gross_ret"][j], abs=1e-14)
    # the entry bar pays the entry cost and nothing else; the bar before the first trade is flat
    assert net_bars[0] == pytest.approx(-out["entry_cost"][0])
    assert gross_bars[0] == 0.0
