"""Each screening filter on a frame with a known answer, the correlation tie-breaks, and train-only
statistics."""

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.config.schema import config_group
from workflow_scripts.data.splits import chronological_split
from workflow_scripts.selection.feature_screening import (
    REPORT_COLUMNS,
    SPEC_KEYS,
    blocked_correlation,
    feature_source,
    is_target_column,
    screen_features,
    screening_markdown,
    screening_summary,
    segment_positions,
    training_rows,
)

N = 200
SCREEN = config_group("screening")


def _frame(rng, **cols):
    base = {"tech__good_a": rng.normal(size=N), "tech__good_b": rng.normal(size=N)}
    base.update(cols)
    return pd.DataFrame({k: np.asarray(v, dtype=np.float32) for k, v in base.items()})


def _reasons(report):
    return dict(zip(report["feature"], report["reason"]))


def test_report_shape_and_order(rng):
    X = _frame(rng, tech__c=rng.normal(size=N))
    kept, report = screen_features(X, SCREEN)
    assert list(report.columns) == REPORT_COLUMNS
    assert report["feature"].tolist() == list(X.columns)
    assert kept == list(X.columns)
    assert (report["reason"] == "").all()


def test_missing_is_structural_absence_of_the_source(rng):
    # ETHUSDT has no bar in the first 75% of rows: every ETH column is NaN there -> missing 0.75 > 0.70.
    absent = np.arange(N) < int(0.75 * N)
    eth_a = np.where(absent, np.nan, rng.normal(size=N))
    eth_b = np.where(absent, np.nan, rng.normal(size=N))
    X = _frame(rng, ETHUSDT__tech__a=eth_a, ETHUSDT__tech__b=eth_b)
    kept, report = screen_features(X, SCREEN)
    r = _reasons(report)
    assert r["ETHUSDT__tech__a"] == r["ETHUSDT__tech__b"] == "missing"
    row = report.set_index("feature").loc["ETHUSDT__tech__a"]
    assert row["missing_frac"] == pytest.approx(0.75)
    assert row["nan_frac"] == pytest.approx(0.75)
    assert kept == ["tech__good_a", "tech__good_b"]


def test_nan_rule_catches_what_missing_does_not(rng):
    # Source absent 50% (missing 0.5, below 0.70) plus warm-up NaN in 45% more rows: NaN 0.95 > 0.90.
    absent = np.arange(N) < N // 2
    warm = (np.arange(N) >= N // 2) & (np.arange(N) < N // 2 + int(0.45 * N))
    sparse = np.where(absent | warm, np.nan, rng.normal(size=N))
    other = np.where(absent, np.nan, rng.normal(size=N))
    # Own feature with 85% NaN (sparse indicator): kept, LightGBM gives NaN its own branch.
    own_sparse = np.where(np.arange(N) < int(0.85 * N), np.nan, rng.normal(size=N))
    # inf counts as NaN (not a finite number) but not as missing.
    with_inf = np.where(np.arange(N) < int(0.92 * N), np.inf, rng.normal(size=N))
    X = _frame(
        rng,
        SOLUSDT__vol__sparse=sparse,
        SOLUSDT__vol__other=other,
        tech__sparse=own_sparse,
        tech__inf=with_inf,
    )
    _, report = screen_features(X, SCREEN)
    r = _reasons(report)
    rep = report.set_index("feature")
    assert rep.loc["SOLUSDT__vol__sparse", "missing_frac"] == pytest.approx(0.5)
    assert rep.loc["SOLUSDT__vol__sparse", "nan_frac"] == pytest.approx(0.95)
    assert r["SOLUSDT__vol__sparse"] == "nan"
    assert r["SOLUSDT__vol__other"] == ""
    assert r["tech__sparse"] == ""
    assert r["tech__inf"] == "nan"
    assert rep.loc["tech__inf", "missing_frac"] == 0.0
    # Both thresholds are configurable.
    _, report2 = screen_features(X, {**SCREEN, "max_nan_frac": 0.99, "max_missing_frac": 0.4})
    r2 = _reasons(report2)
    assert r2["SOLUSDT__vol__sparse"] == r2["SOLUSDT__vol__other"] == "missing"
    assert r2["tech__inf"] == ""


def test_explicit_availability_overrides_inference(rng):
    X = _frame(rng, ETHUSDT__tech__a=rng.normal(size=N))
    mask = np.arange(N) >= int(0.8 * N)  # "ETH listed only in the last 20%"
    _, report = screen_features(X, SCREEN, availability={"ETHUSDT": mask, "": np.ones(N, bool)})
    assert _reasons(report)["ETHUSDT__tech__a"] == "missing"


def test_same_value_rule(rng):
    mostly_zero = np.zeros(N)
    mostly_zero[: int(0.04 * N)] = rng.normal(size=int(0.04 * N))  # 96% identical
    borderline = np.zeros(N)
    borderline[: int(0.06 * N)] = rng.normal(size=int(0.06 * N))  # 94% identical: kept
    X = _frame(rng, candle__zero=mostly_zero, candle__border=borderline)
    _, report = screen_features(X, SCREEN)
    r = _reasons(report)
    assert r["candle__zero"] == "same_value"
    assert r["candle__border"] == ""
    rep = report.set_index("feature")
    assert rep.loc["candle__zero", "top_value_frac"] == pytest.approx(0.96)


def test_same_value_counts_finite_values_only(rng):
    # 60% NaN, the rest one value: 100% of the finite values are the same.
    x = np.where(np.arange(N) < int(0.6 * N), np.nan, 3.0)
    X = _frame(rng, candle__const_tail=x)
    _, report = screen_features(X, SCREEN)
    assert _reasons(report)["candle__const_tail"] == "same_value"


def test_variance_rule(rng):
    tiny = 1.0 + rng.normal(size=N) * 1e-8  # float32 rounds it to a near-constant with tiny spread
    spread = np.arange(N) % 40 * 1e-5  # small but real variance, many distinct values
    X = _frame(rng, struct__tiny=tiny, struct__small=spread)
    _, report = screen_features(X, {**SCREEN, "max_same_value_frac": 1.0})
    r = _reasons(report)
    assert r["struct__tiny"] == "low_variance"
    assert r["struct__small"] == ""
    _, report2 = screen_features(X, {**SCREEN, "max_same_value_frac": 1.0, "min_variance": 1e-6})
    assert _reasons(report2)["struct__small"] == "low_variance"


def test_correlation_keeps_fewer_missing(rng):
    base = rng.normal(size=N)
    noisy = base + rng.normal(size=N) * 0.05  # |r| ~ 0.999
    with_nan = noisy.copy()
    with_nan[:10] = np.nan
    X = _frame(rng, tech__z_has_none=base, tech__a_has_nan=with_nan)
    _, report = screen_features(X, SCREEN)
    r = _reasons(report)
    # The name order alone would keep tech__a_has_nan; fewer NaN rows wins first.
    assert r["tech__z_has_none"] == ""
    assert r["tech__a_has_nan"] == "correlated"
    rep = report.set_index("feature")
    assert rep.loc["tech__a_has_nan", "correlated_with"] == "tech__z_has_none"
    assert rep.loc["tech__a_has_nan", "abs_corr"] > 0.9


def test_correlation_tie_break_by_name_and_negative_correlation(rng):
    base = rng.normal(size=N)
    X = _frame(rng, tech__b=base, tech__a=-base * 2.0 + 1.0, tech__c=base + rng.normal(size=N) * 2.0)
    kept, report = screen_features(X, SCREEN)
    r = _reasons(report)
    assert r["tech__a"] == ""  # same NaN count: the smaller name stays
    assert r["tech__b"] == "correlated"
    assert report.set_index("feature").loc["tech__b", "correlated_with"] == "tech__a"
    assert r["tech__c"] == ""  # |r| ~ 0.45
    # Column order of the input does not change the decision.
    kept2, _ = screen_features(X[list(reversed(X.columns))], SCREEN)
    assert sorted(kept2) == sorted(kept)


def test_correlation_tie_prefers_the_own_feature(rng):
    hour = (np.arange(N) % 24).astype(float)
    X = _frame(rng, time__hour=hour, ETHUSDT__time__hour=hour)
    _, report = screen_features(X, SCREEN)
    r = _reasons(report)
    assert r["time__hour"] == "" and r["ETHUSDT__time__hour"] == "correlated"


def test_correlation_chain_is_greedy(rng):
    # a ~ b (0.95) and b ~ c (0.95) but a, c ~ 0.81: keep a, drop b, keep c.
    a = rng.normal(size=N)
    e = rng.normal(size=N)
    e -= e.mean()
    e -= (e @ (a - a.mean())) / ((a - a.mean()) @ (a - a.mean())) * (a - a.mean())
    a_s = (a - a.mean()) / a.std()
    e_s = e / e.std()
    c = 0.81 * a_s + np.sqrt(1 - 0.81**2) * e_s
    b = (a_s + c) / np.std(a_s + c)
    X = _frame(rng, tech__a=a_s, tech__b=b, tech__c=c)
    _, report = screen_features(X, SCREEN)
    r = _reasons(report)
    assert (r["tech__a"], r["tech__b"], r["tech__c"]) == ("", "correlated", "")


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1024])
def test_block_size_does_not_change_the_result(rng, block):
    base = rng.normal(size=(N, 3))
    cols = {
        f"tech__f{i:02d}": base[:, i % 3] + rng.normal(size=N) * (0.1 if i % 2 else 1.0) for i in range(12)
    }
    X = _frame(rng, **cols)
    ref_kept, ref = screen_features(X, {**SCREEN, "corr_block_size": 1024})
    kept, report = screen_features(X, {**SCREEN, "corr_block_size": block})
    assert kept == ref_kept
    pd.testing.assert_frame_equal(report.drop(columns="abs_corr"), ref.drop(columns="abs_corr"))


def test_blocked_correlation_equals_corrcoef(rng):
    X = rng.normal(size=(300, 40)) @ rng.normal(size=(40, 40))
    X = (X * rng.uniform(0.01, 100, size=40)).astype(np.float32)
    for block in (1, 7, 16, 1024):
        got = blocked_correlation(X, block_size=block)
        np.testing.assert_allclose(got, np.corrcoef(X.astype(np.float64), rowvar=False), atol=2e-5)


def test_target_columns_are_dropped(rng):
    X = _frame(
        rng,
        high_breakout_k1_5_th0_5=rng.normal(size=N),
        target_x=rng.normal(size=N),
        ETHUSDT__label_end=rng.normal(size=N),
        tech__labelled_not=rng.normal(size=N),
    )
    _, report = screen_features(X, SCREEN)
    r = _reasons(report)
    assert r["high_breakout_k1_5_th0_5"] == r["target_x"] == r["ETHUSDT__label_end"] == "target_derived"
    assert r["tech__labelled_not"] == ""


def test_names():
    assert is_target_column("low_reversion_k2.0_th1.0")
    assert is_target_column("label_end")
    assert not is_target_column("tech__rsi_14")
    assert feature_source("ETHUSDT__tech__rsi_14") == "ETHUSDT"
    assert feature_source("tech__rsi_14") == ""


def test_refuses_unknown_keys_and_non_numeric(rng):
    X = _frame(rng)
    with pytest.raises(KeyError):
        screen_features(X, {**SCREEN, "max_missing": 0.5})
    with pytest.raises(TypeError):
        screen_features(X.assign(timestamp=pd.Timestamp("2024-01-01", tz="UTC")), SCREEN)


def test_deterministic_and_summary(rng):
    base = rng.normal(size=N)
    X = _frame(rng, tech__x=base, tech__y=base * 3, candle__z=np.zeros(N))
    k1, r1 = screen_features(X, SCREEN)
    k2, r2 = screen_features(X.copy(), SCREEN)
    assert k1 == k2
    pd.testing.assert_frame_equal(r1, r2)
    summary = screening_summary(r1, SCREEN)
    assert summary["n_kept"] == len(k1) and summary["kept"] == k1
    assert summary["dropped_by_reason"]["correlated"] == 1
    assert summary["dropped"]["tech__y"] == {"reason": "correlated", "correlated_with": "tech__x"}
    md = screening_markdown(r1, summary)
    assert "tech__y" in md and "| correlated | 1 |" in md


# ---- training rows only ------------------------------------------------------------------------------------
SPLIT = {
    "train": {"lo": 0, "hi": 120},
    "validation": {"lo": 140, "hi": 170},
    "test": {"lo": 180, "hi": 240},
    "horizon": 5,
    "purge": 5,
}


def test_segment_positions_follow_the_contract():
    pos = segment_positions(SPLIT, "train", 240)
    assert pos[0] == 0 and pos[-1] == 114  # i + H < hi
    assert segment_positions(SPLIT, "validation", 240).tolist() == list(range(140, 165))
    assert segment_positions(SPLIT, "test", 200).tolist() == list(range(180, 200))


def test_training_rows_of_a_real_split_json():
    ts = pd.Series(pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC"))
    split = chronological_split(ts, horizon=10, train_frac=0.6, validation_frac=0.2, embargo_bars=24)
    frame = pd.DataFrame({"tech__x": np.arange(300, dtype=np.float32)})
    rows = training_rows(frame, split)
    assert rows["tech__x"].iloc[0] == 0 and rows["tech__x"].iloc[-1] == split["train"]["last_row"] == 169


def test_statistics_ignore_validation_and_test_rows(rng):
    n = 240
    base = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "tech__a": base,
            "tech__b": base + rng.normal(size=n) * 0.2,
            "tech__c": rng.normal(size=n),
            "candle__d": np.where(np.arange(n) % 30 == 0, 1.0, 0.0),
            "ETHUSDT__tech__e": np.where(np.arange(n) < 60, np.nan, rng.normal(size=n)),
        }
    ).astype(np.float32)
    kept, report = screen_features(training_rows(frame, SPLIT), SCREEN)

    # Scramble everything outside the training rows: NaN, constants, a perfect copy of another column.
    poisoned = frame.copy()
    outside = np.ones(n, dtype=bool)
    outside[segment_positions(SPLIT, "train", n)] = False
    poisoned.loc[outside, "tech__c"] = np.nan
    poisoned.loc[outside, "tech__a"] = 7.0
    poisoned.loc[outside, "tech__b"] = (rng.normal(size=outside.sum()) * 1e6).astype(np.float32)
    poisoned.loc[outside, "ETHUSDT__tech__e"] = np.nan
    kept2, report2 = screen_features(training_rows(poisoned, SPLIT), SCREEN)
    assert kept2 == kept
    pd.testing.assert_frame_equal(report2, report)
    # ...while the same poison inside the training rows does change the result.
    poisoned.loc[~outside, "tech__c"] = np.nan
    kept3, _ = screen_features(training_rows(poisoned, SPLIT), SCREEN)
    assert "tech__c" not in kept3


@pytest.mark.parametrize("key", SPEC_KEYS)
def test_missing_key_is_named(key):
    spec = {k: v for k, v in SCREEN.items() if k != key}
    with pytest.raises(KeyError, match=f"'{key}'.*missing"):
        screen_features(_frame(np.random.default_rng(0)), spec)
