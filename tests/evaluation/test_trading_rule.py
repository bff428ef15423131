import numpy as np
import pytest

from workflow_scripts.evaluation.trading_rule import (
    TradingRule,
    build_trades,
    select_non_overlapping,
    signals,
)

# 12 hourly closes rising by 1 per bar; horizon H = 3 bars
CLOSE = np.arange(100.0, 112.0)
H = 3


def _rows():
    pos = np.array([1, 2, 3, 5, 7])
    side = np.array(["high", "high", "high", "high", "low"])
    proba = np.array(
        [
            [0.2, 0.7, 0.1],  # high, breakout 0.7 -> long
            [0.1, 0.1, 0.8],  # high, reversion 0.8 -> short, but a position is open -> skipped
            [0.3, 0.1, 0.6],  # high, reversion 0.6 -> short (only when the first trade exited at bar 3)
            [0.5, 0.4, 0.1],  # breakout 0.4 is below the threshold -> no trade
            [0.1, 0.0, 0.9],  # low, reversion -> long
        ]
    )
    label = np.array([0, 2, 1, 0, 2])
    barrier = np.full(5, 0.02)
    return {"pos": pos, "side": side, "proba": proba, "label": label, "barrier_logret": barrier}


def test_signal_direction_table():
    proba = np.array([[0, 0.9, 0.1], [0, 0.1, 0.9], [0, 0.9, 0.1], [0, 0.1, 0.9], [0.9, 0.05, 0.05]])
    side = np.array(["high", "high", "low", "low", "high"])
    d, cls, _ = signals(proba, side, 0.5)
    assert d.tolist() == [1, -1, -1, 1, 0]  # high breakout long, high reversion short, mirrored on low
    assert cls.tolist() == [1, 2, 1, 2, 0]
    d_long_only, _, _ = signals(proba, side, 0.5, allow_short=False)
    assert d_long_only.tolist() == [1, 0, 0, 1, 0]


def test_no_overlap_fallback_exits_at_horizon():
    # without exit_pos every trade is held to t + H: the row at 2 and at 3 fall inside the first trade (1..4)
    t = build_trades(**_rows(), horizon=H, close=CLOSE, rule=TradingRule(threshold=0.5))
    assert t["entry_pos"].tolist() == [1, 7]
    assert t["exit_pos"].tolist() == [4, 10]
    assert t["direction"].tolist() == [1, 1]
    # "neither" settles at the close-to-close move; a low reversion is the upper barrier (+0.02 in price)
    np.testing.assert_allclose(t["price_logret"], [np.log(104 / 101), 0.02])
    np.testing.assert_allclose(t["gross_ret"], [104 / 101 - 1, np.expm1(0.02)])
    assert t["n_signals"] == 4


def test_precomputed_exits_and_reentry_on_the_exit_bar():
    rows = _rows()
    exit_pos = np.array([3, 4, 4, 8, 9])  # first trade touched a barrier on bar 3
    exit_logret = np.array([0.02, -0.02, 0.02, np.log(108 / 105), 0.02])
    t = build_trades(
        **rows,
        horizon=H,
        close=CLOSE,
        rule=TradingRule(threshold=0.5),
        exit_pos=exit_pos,
        exit_logret=exit_logret,
    )
    # bar 2 is still inside the first trade; bar 3 may enter at the close the first one exited on
    assert t["entry_pos"].tolist() == [1, 3, 7]
    assert t["direction"].tolist() == [1, -1, 1]
    np.testing.assert_allclose(t["gross_ret"], [np.expm1(0.02), -np.expm1(0.02), np.expm1(0.02)])
    starts, ends = t["entry_pos"], t["exit_pos"]
    assert np.all(starts[1:] >= ends[:-1])  # never two positions at once


def test_overlap_allowed_takes_every_signal():
    t = build_trades(**_rows(), horizon=H, close=CLOSE, rule=TradingRule(threshold=0.5, allow_overlap=True))
    assert t["entry_pos"].tolist() == [1, 2, 3, 7]


def test_ambiguous_is_settled_against_the_position_and_unknown_is_dropped():
    rows = _rows()
    rows["label"] = np.array([-2, 2, -3, 0, 2])
    t = build_trades(**rows, horizon=H, close=CLOSE, rule=TradingRule(threshold=0.5))
    assert t["entry_pos"].tolist() == [1, 7]
    assert t["ambiguous"].tolist() == [True, False]
    np.testing.assert_allclose(t["price_logret"][0], -0.02)  # long, lower barrier assumed first
    assert t["n_unsettled"] == 1


def test_greedy_selection_is_vectorised_over_candidates():
    entry = np.array([0, 1, 2, 5, 5, 9])
    exit_ = np.array([5, 3, 4, 9, 6, 12])
    assert select_non_overlapping(entry, exit_).tolist() == [True, False, False, True, False, True]
    with pytest.raises(ValueError):
        select_non_overlapping(entry[::-1], exit_[::-1])


def test_rule_config_is_checked():
    with pytest.raises(ValueError, match="unknown"):
        TradingRule.from_mapping({"threshhold": 0.5})
    with pytest.raises(ValueError, match="threshold"):
        TradingRule.from_mapping({"threshold": 1.5})
