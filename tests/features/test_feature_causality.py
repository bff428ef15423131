"""Every value at row t is known at t: rewriting the bars after t leaves rows <= t bitwise unchanged."""

import numpy as np
import pytest

from tests.features.conftest import randomise_after
from workflow_scripts.config.schema import config_group
from workflow_scripts.features import add_cross_coin, build_features

DEFAULT_SPEC = config_group("features")

LAGGED = {**DEFAULT_SPEC, "lookbacks": [3, 8, 21], "lags": [1, 4]}


def assert_prefix_unchanged(a, b, t):
    assert list(a.columns) == list(b.columns)
    x = a.iloc[: t + 1, 1:].to_numpy()
    y = b.iloc[: t + 1, 1:].to_numpy()
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    bad = [a.columns[1 + j] for j in np.flatnonzero(~same.all(axis=0))]
    assert not bad, f"{len(bad)} features change at rows <= {t} when later bars change: {bad[:10]}"
    assert np.array_equal(x, y, equal_nan=True)


@pytest.mark.parametrize("spec", [DEFAULT_SPEC, LAGGED], ids=["default", "lagged"])
@pytest.mark.parametrize("t", [1500, 1985])  # mid-segment; right after the real one-bar gap (row 1981)
def test_build_features_is_causal(raw_bars, spec, t):
    bars = raw_bars["BTCUSDT"].iloc[: t + 300]
    before = build_features(bars, spec)
    after = build_features(randomise_after(bars, t, seed=t), spec)
    assert not np.array_equal(
        before["tech__ret_3"].to_numpy()[t + 5 :], after["tech__ret_3"].to_numpy()[t + 5 :]
    )
    assert_prefix_unchanged(before, after, t)


def test_add_cross_coin_is_causal(raw_bars):
    t = 1200
    spec = {**DEFAULT_SPEC, "lookbacks": [5, 34]}
    own = {s: raw_bars[s].iloc[:1500] for s in raw_bars}
    # SOL "lists" later: its table starts at row 300.
    own["SOLUSDT"] = own["SOLUSDT"].iloc[300:]
    tables = {s: build_features(b, spec) for s, b in own.items()}
    cross = add_cross_coin(tables["BTCUSDT"], {s: tables[s] for s in ("ETHUSDT", "SOLUSDT")})
    changed = {
        s: build_features(
            randomise_after(b.reset_index(drop=True), t - (300 if s == "SOLUSDT" else 0), seed=7), spec
        )
        for s, b in own.items()
    }
    cross2 = add_cross_coin(changed["BTCUSDT"], {s: changed[s] for s in ("ETHUSDT", "SOLUSDT")})
    assert_prefix_unchanged(cross, cross2, t)
    assert not np.array_equal(
        cross["SOLUSDT__tech__ret_5"].to_numpy()[t + 10 :],
        cross2["SOLUSDT__tech__ret_5"].to_numpy()[t + 10 :],
    )
