from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.registry.conftest import (
    HISTORY_DEPENDENT,
    OTHER,
    REAL_SPEC,
    SYMBOL,
    simple_builder,
    simple_features,
)
from workflow_scripts.registry import predictions as pr
from workflow_scripts.registry import store as reg


def _champions(factory, reg_dir, **kw):
    vins = []
    for side in ("high", "low"):
        e = reg.register(reg_dir, factory.folder(side=side, **kw))
        reg.promote(reg_dir, e["vin"])
        vins.append(e["vin"])
    return vins


def test_batch_predictions_whole_history(factory, reg_dir):
    vins = _champions(factory, reg_dir)
    preds = pr.batch_predictions(reg_dir, SYMBOL, factory.features)
    assert list(preds.columns) == pr.PRED_COLUMNS
    assert len(preds) == 2 * len(factory.features) and set(preds["vin"]) == set(vins)
    assert str(preds["timestamp"].dtype) == "datetime64[ns, UTC]"
    np.testing.assert_allclose(preds[["p_neither", "p_breakout", "p_reversion"]].sum(axis=1), 1.0, rtol=1e-9)
    assert preds.set_index(["timestamp", "side"]).index.is_unique


def test_append_is_idempotent_and_matches_batch(factory, reg_dir, tmp_path):
    _champions(factory, reg_dir)
    out = tmp_path / "predictions" / f"{SYMBOL}.parquet"
    bars = factory.bars
    first = {SYMBOL: bars.iloc[:2000]}
    assert pr.append_predictions(reg_dir, SYMBOL, first, out, builder=simple_builder) == 2 * 2000
    assert pr.append_predictions(reg_dir, SYMBOL, first, out, builder=simple_builder) == 0
    for stop in (2001, 2150, len(bars)):  # bars arrive one and many at a time
        added = pr.append_predictions(
            reg_dir, SYMBOL, {SYMBOL: bars.iloc[:stop]}, out, builder=simple_builder
        )
        assert added > 0
    before = out.read_bytes()
    assert pr.append_predictions(reg_dir, SYMBOL, {SYMBOL: bars}, out, builder=simple_builder) == 0
    assert out.read_bytes() == before  # running twice adds (and rewrites) nothing
    live = pd.read_parquet(out)
    batch = pr.batch_predictions(reg_dir, SYMBOL, simple_features(bars))
    assert len(live) == len(batch)
    pd.testing.assert_frame_equal(live, batch, check_exact=False, rtol=1e-6)


def test_incremental_simple_features_equal_batch(factory):
    bars = factory.bars
    after = bars["timestamp"].iloc[2200]
    inc = pr.incremental_features({SYMBOL: bars}, SYMBOL, after, 60, simple_builder)
    full = simple_features(bars)
    full = full[full["timestamp"] > after].reset_index(drop=True)
    pd.testing.assert_frame_equal(inc, full)


def _real_features_or_skip():
    try:
        import workflow_scripts.features  # noqa: F401
    except ImportError as exc:  # the features helper writes workflow_scripts/features/ in parallel
        pytest.skip(f"workflow_scripts.features not importable yet ({exc})")


def _history_dependent(columns):
    return [c for c in columns if c in HISTORY_DEPENDENT or c.split("__", 1)[-1] in HISTORY_DEPENDENT]


def _live_vs_batch(factory, cut):
    builder = pr.workflow_feature_builder(REAL_SPEC, [SYMBOL, OTHER])
    after = factory.bars["timestamp"].iloc[cut - 1]
    inc = pr.incremental_features(
        factory.bars_by_symbol, SYMBOL, after, pr.history_bars_for({"spec": REAL_SPEC}), builder
    )
    batch = factory.real_features
    return inc, batch[batch["timestamp"] > after].reset_index(drop=True)


def test_batch_and_incremental_workflow_features_agree(factory):
    """The live path (trailing history -> build_features -> add_cross_coin) equals the batch table on new
    bars, for every column except the documented history-dependent ones."""
    _real_features_or_skip()
    assert any(c.startswith(f"{OTHER}__") for c in factory.real_features.columns)
    for cut in (len(factory.bars) - 1, len(factory.bars) - 30):
        inc, want = _live_vs_batch(factory, cut)
        assert len(inc) == len(factory.bars) - cut and list(inc.columns) == list(want.columns)
        skip = _history_dependent(inc.columns)
        assert skip == []  # every column, own and ETHUSDT's, is reproduced by the live path
        pd.testing.assert_frame_equal(
            inc.drop(columns=skip), want.drop(columns=skip), check_exact=False, rtol=1e-5, atol=1e-6
        )


def test_append_with_workflow_features(factory, reg_dir, tmp_path):
    _real_features_or_skip()
    e = reg.register(reg_dir, factory.folder(real=True))
    reg.promote(reg_dir, e["vin"])
    out = tmp_path / f"{SYMBOL}.parquet"
    cut = len(factory.bars) - 24
    t_cut = factory.bars["timestamp"].iloc[cut - 1]
    early = {s: b[b["timestamp"] <= t_cut] for s, b in factory.bars_by_symbol.items()}
    pr.write_batch(reg_dir, SYMBOL, factory.real_features.iloc[:cut], out)
    assert pr.append_predictions(reg_dir, SYMBOL, early, out) == 0
    assert pr.append_predictions(reg_dir, SYMBOL, factory.bars_by_symbol, out) == 24
    assert pr.append_predictions(reg_dir, SYMBOL, factory.bars_by_symbol, out) == 0
    live = pd.read_parquet(out)
    batch = pr.batch_predictions(reg_dir, SYMBOL, factory.real_features)
    pd.testing.assert_frame_equal(live, batch, check_exact=False, rtol=1e-5, atol=1e-7)


def test_append_refuses_tampered_champion(factory, reg_dir, tmp_path):
    vins = _champions(factory, reg_dir)
    path = reg_dir / "models" / vins[0] / "model.txt"
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(reg.IntegrityError, match="model.txt"):
        pr.append_predictions(
            reg_dir, SYMBOL, {SYMBOL: factory.bars}, tmp_path / "p.parquet", builder=simple_builder
        )
    assert not (tmp_path / "p.parquet").exists()


def test_history_floor_keeps_continuity_features_equal(factory):
    """features.json may ask for fewer trailing bars than `time__bars_since_gap` counts (capped at
    CONTINUITY_CAP): the live path then takes the cap, and only then does that column equal the batch
    table."""
    from workflow_scripts.features.temporal import CONTINUITY_CAP

    info = {"spec": REAL_SPEC, "history_bars": 100}
    assert pr.history_bars_for(info) == CONTINUITY_CAP
    assert pr.history_bars_for({"spec": {**REAL_SPEC, "families": ["tech"]}, "history_bars": 100}) == 100
    builder = pr.workflow_feature_builder(REAL_SPEC, [SYMBOL, OTHER])
    after = factory.bars["timestamp"].iloc[-11]
    want = factory.real_features[factory.real_features["timestamp"] > after].reset_index(drop=True)
    short = pr.incremental_features(factory.bars_by_symbol, SYMBOL, after, 100, builder)
    floored = pr.incremental_features(
        factory.bars_by_symbol, SYMBOL, after, pr.history_bars_for(info), builder
    )
    assert (short["time__bars_since_gap"] < want["time__bars_since_gap"]).all()
    pd.testing.assert_frame_equal(floored, want, check_exact=False, rtol=1e-5, atol=1e-6)
