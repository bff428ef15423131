"""Swing targets on small hand-computed series: events, barrier races, ties, end of data, gaps, causality."""

import numpy as np
import pandas as pd

from tests.conftest import hourly
from workflow_scripts.targets import swing_targets as st
from workflow_scripts.targets.grammar import target_grid


def bars_from(close, high=None, low=None, timestamps=None):
    close = np.asarray(close, dtype=float)
    high = close + 0.1 if high is None else np.asarray(high, dtype=float)
    low = close - 0.1 if low is None else np.asarray(low, dtype=float)
    ts = hourly(len(close)) if timestamps is None else timestamps
    return pd.DataFrame(
        {
            "timestamp": ts,
            "open": close,
            "high": high,
            "low": low,
            "close": close,
            "volume": np.ones(len(close)),
        }
    )


def test_band_uses_only_bars_before_t():
    close = np.array([100.0, 102.0, 110.0, 90.0])
    mean, std = st.band(close, st.segment_position(hourly(4)), window=2)
    assert np.isnan(mean[:2]).all()
    assert mean[2] == 101.0 and np.isclose(std[2], np.sqrt(2.0))  # bars 0 and 1, not bar 2 itself
    assert mean[3] == 106.0 and np.isclose(std[3], np.sqrt(32.0))


def test_event_definitions_and_strict_ties():
    # Band over bars 0..1: m = 101, s = sqrt(2); k = 1 -> upper 102.414.., lower 99.585..
    upper, lower = 101 + np.sqrt(2), 101 - np.sqrt(2)
    cases = {
        "high_breakout": ([100, 102, 103.0], None, None, True),
        "high_reversion": ([100, 102, 102.0], [100.1, 102.1, 103.0], None, True),
        "low_breakout": ([100, 102, 99.0], None, None, True),
        "low_reversion": ([100, 102, 100.0], None, [99.9, 101.9, 99.0], True),
    }
    for kind, (close, high, low, expected) in cases.items():
        bars = bars_from(close, high, low)
        mean, std = st.band(bars["close"].to_numpy(), st.segment_position(bars["timestamp"]), 2)
        assert st.events(bars, mean, std, kind, 1.0)[2] == expected, kind
    # A close exactly on the band is not a breakout (strict >), and a bar with s = 0 has no event.
    bars = bars_from([100, 102, upper], high=[100.1, 102.1, upper])
    mean, std = st.band(bars["close"].to_numpy(), st.segment_position(bars["timestamp"]), 2)
    assert not st.events(bars, mean, std, "high_breakout", 1.0)[2]
    flat = bars_from([100, 100, 150.0])
    mean, std = st.band(flat["close"].to_numpy(), st.segment_position(flat["timestamp"]), 2)
    assert not st.events(flat, mean, std, "high_breakout", 1.0).any()
    del lower


def race(close, high, low, sigma0=0.01, theta=1.0, horizon=4, timestamps=None):
    bars = bars_from(close, high, low, timestamps)
    sigma = np.full(len(close), np.nan)
    sigma[0] = sigma0
    ahead = st.contiguous_ahead(bars["timestamp"])
    return st.barrier_race(bars, sigma, theta, horizon, ahead)


def test_barrier_race_up_down_both_none_open():
    # width = theta * sigma * sqrt(H) = 0.01 * 2 = 0.02: up = 100 e^0.02 = 102.02, down = 98.02
    close = [100, 100, 100, 100, 100, 100]
    up = race(close, [100, 101, 102.5, 100, 100, 100], [100, 99, 99, 99, 99, 99])
    assert up["outcome"][0] == st.UP and up["exit_pos"][0] == 2 and np.isclose(up["exit_logret"][0], 0.02)
    down = race(close, [100, 101, 101, 101, 101, 101], [100, 99, 99, 97.0, 99, 99])
    assert (
        down["outcome"][0] == st.DOWN
        and down["exit_pos"][0] == 3
        and np.isclose(down["exit_logret"][0], -0.02)
    )
    both = race(close, [100, 103, 101, 101, 101, 101], [100, 97, 99, 99, 99, 99])
    assert both["outcome"][0] == st.BOTH and np.isnan(both["exit_logret"][0])
    none = race([100, 100, 100, 100, 101, 100], [100] * 6, [100] * 6)
    assert none["outcome"][0] == st.NONE and none["exit_pos"][0] == 4
    assert np.isclose(none["exit_logret"][0], np.log(101 / 100))
    # Past the end of the data: horizon 4 but only 2 bars follow, untouched -> open (unknown label).
    short = race([100, 100, 100], [100] * 3, [100] * 3)
    assert short["outcome"][0] == st.OPEN


def test_barrier_race_stops_at_a_gap():
    ts = hourly(8)
    ts = pd.concat([ts.iloc[:3], ts.iloc[3:] + pd.Timedelta(hours=10)]).reset_index(drop=True)
    untouched = race([100] * 8, [100] * 8, [100] * 8, timestamps=ts)
    assert untouched["outcome"][0] == st.OPEN  # the horizon runs into the gap untouched
    touched = race([100] * 8, [100, 102.5] + [100] * 6, [100] * 8, timestamps=ts)
    assert touched["outcome"][0] == st.UP  # the touch came before the gap: the label is known


def test_label_mapping_per_side():
    outcome = np.array([st.UP, st.DOWN, st.BOTH, st.NONE, st.OPEN], dtype=np.int8)
    assert st.labels_for_side(outcome, "high").tolist() == [
        st.BREAKOUT,
        st.REVERSION,
        st.AMBIGUOUS,
        st.NEITHER,
        st.UNKNOWN,
    ]
    assert st.labels_for_side(outcome, "low").tolist() == [
        st.REVERSION,
        st.BREAKOUT,
        st.AMBIGUOUS,
        st.NEITHER,
        st.UNKNOWN,
    ]


def test_sigma_is_gap_aware():
    ts = hourly(60)
    ts = pd.concat([ts.iloc[:30], ts.iloc[30:] + pd.Timedelta(hours=5)]).reset_index(drop=True)
    close = 100 * np.exp(np.cumsum(np.sin(np.arange(60))) * 0.01)
    sigma = st.sigma_logret(close, st.segment_position(ts), window=5, min_bars=10)
    assert np.isfinite(sigma[10:30]).all()
    assert np.isnan(sigma[30:40]).all() and np.isfinite(sigma[40:]).all()
    # After refilling, the value only depends on post-gap bars.
    alone = st.sigma_logret(close[30:], st.segment_position(ts.iloc[30:].reset_index(drop=True)), 5, 10)
    np.testing.assert_allclose(sigma[40:], alone[10:])


GRID = target_grid(
    {
        "types": ["high_breakout", "high_reversion", "low_breakout", "low_reversion"],
        "std_thresholds": [1.0, 2.0],
        "barrier_thresholds": [0.5, 1.0],
    }
)


def test_real_bars_balanced_and_label_known_only_after_horizon(btc_bars):
    bars = btc_bars.iloc[:6000].reset_index(drop=True)
    table = st.build_targets(bars, 5, GRID, 5, 24)
    summary = st.target_summary(table, GRID)
    for tid, s in summary.items():
        assert s["events"] > 100, tid
        assert s["breakout"] > 0 and s["reversion"] > 0, tid
    assert (table["label_end"] == np.arange(len(bars)) + 5).all()
    # Causality: change every bar after cut T; labels whose horizon ends at or before T are unchanged,
    # and events (band + bar t) at or before T are unchanged.
    cut = 4000
    altered = bars.copy()
    rng = np.random.default_rng(1)
    scale = np.exp(rng.normal(0, 0.05, len(bars) - cut - 1))
    for col in ("open", "high", "low", "close"):
        altered.loc[cut + 1 :, col] = bars.loc[cut + 1 :, col].to_numpy() * scale
    altered_table = st.build_targets(altered, 5, GRID, 5, 24)
    known = table["label_end"].to_numpy() <= cut
    for g in GRID:
        np.testing.assert_array_equal(
            table[g["id"]].to_numpy()[known], altered_table[g["id"]].to_numpy()[known]
        )
        event_before = table[g["id"]].to_numpy()[: cut + 1] != st.NO_EVENT
        np.testing.assert_array_equal(
            event_before, altered_table[g["id"]].to_numpy()[: cut + 1] != st.NO_EVENT
        )
