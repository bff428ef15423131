"""Ingest: every bad-input case names the file, the row and the problem; good files normalise."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import RAW, ROOT
from workflow_scripts.data import ingest
from workflow_scripts.data.ingest import BarsError


def good_frame(n=50):
    ts = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC").astype("datetime64[ns, UTC]")
    close = 100 + np.arange(n, dtype=float)
    return pd.DataFrame(
        {
            "timestamp": ts,
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": np.ones(n),
        }
    )


def write_csv(tmp_path, df, name="X_1h.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_real_parquet_normalises_and_reports_gaps():
    bars, report = ingest.ingest(RAW / "BTCUSDT_1h.parquet", "BTCUSDT", None, None)
    assert str(bars["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert all(bars[c].dtype == np.float64 for c in ["open", "high", "low", "close", "volume"])
    assert bars["timestamp"].is_monotonic_increasing and bars["timestamp"].is_unique
    # The demo span has one real outage; it is kept (not filled) and reported.
    assert report["gap_count"] == 1 and report["missing_bars"] >= 1
    assert report["rows"] == len(bars)


def test_freqtrade_feather_and_json(tmp_path):
    feather = ROOT / "tests" / "fixtures" / "SOL_USDT-1h.feather"
    bars, _ = ingest.ingest(feather, "SOLUSDT", None, None)
    assert len(bars) > 1000 and list(bars.columns) == list(ingest.COLUMNS)
    raw = pd.read_feather(feather).head(30)
    rows = [[int(t.value // 10**6), o, h, l, c, v] for t, o, h, l, c, v in raw.itertuples(index=False)]
    path = tmp_path / "SOL_USDT-1h.json"
    path.write_text(json.dumps(rows))
    from_json, _ = ingest.ingest(path, "SOLUSDT", None, None)
    pd.testing.assert_frame_equal(from_json, bars.head(30))


def test_csv_round_trip_equals_parquet(tmp_path):
    df = good_frame()
    bars, _ = ingest.ingest(write_csv(tmp_path, df), "X", None, None)
    pd.testing.assert_frame_equal(bars, df)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d.drop(columns=["volume"]), "missing column(s) ['volume']"),
        (
            lambda d: d.assign(timestamp=d["timestamp"].astype(str).where(d.index != 7, "not-a-date")),
            "row 7: unparseable timestamp 'not-a-date'",
        ),
        (lambda d: pd.concat([d.iloc[:5], d.iloc[4:]]).reset_index(drop=True), "row 5: duplicate timestamp"),
        (lambda d: d.iloc[[0, 1, 3, 2, 4]].reset_index(drop=True), "row 3: timestamps not sorted"),
        (lambda d: d.assign(high=d["high"].where(d.index != 9, 50.0)), "row 9"),
        (lambda d: d.assign(low=d["low"].where(d.index != 4, -1.0)), "row 4"),
        (lambda d: d.assign(close=d["close"].where(d.index != 6, 0.0)), "row 6"),
        (lambda d: d.assign(open=d["open"].where(d.index != 8, np.nan)), "row 8"),
        (
            lambda d: d.assign(volume=d["volume"].astype(object).where(d.index != 3, "abc")),
            "row 3: column 'volume' is not a number",
        ),
    ],
    ids=[
        "missing-column",
        "bad-timestamp",
        "duplicate",
        "unsorted",
        "high-below-low",
        "negative",
        "zero",
        "nan",
        "text-number",
    ],
)
def test_bad_input_names_file_row_problem(tmp_path, mutate, expected):
    path = write_csv(tmp_path, mutate(good_frame(12)))
    with pytest.raises(BarsError) as err:
        ingest.ingest(path, "X", None, None)
    message = str(err.value)
    assert str(path) in message and expected in message


def test_specific_price_problems_are_named(tmp_path):
    df = good_frame(12)
    df.loc[9, "high"] = 50.0
    with pytest.raises(BarsError, match=r"row 9 .*high < low"):
        ingest.ingest(write_csv(tmp_path, df), "X", None, None)
    df = good_frame(12)
    df.loc[6, "close"] = 0.0
    with pytest.raises(BarsError, match=r"row 6 .*zero or negative"):
        ingest.ingest(write_csv(tmp_path, df), "X", None, None)
    df = good_frame(12)
    df.loc[8, "open"] = np.nan
    with pytest.raises(BarsError, match=r"row 8 .*NaN"):
        ingest.ingest(write_csv(tmp_path, df), "X", None, None)


def test_empty_file_and_too_short_history(tmp_path):
    empty = tmp_path / "E_1h.csv"
    empty.write_text("")
    with pytest.raises(BarsError, match="file is empty"):
        ingest.ingest(empty, "E", None, None)
    with pytest.raises(BarsError, match=r"has 12 bars .* at least 500"):
        ingest.ingest(write_csv(tmp_path, good_frame(12)), "X", None, None, min_bars=500)


def test_gaps_are_kept_not_filled():
    df = good_frame(30).drop(index=range(10, 15)).reset_index(drop=True)
    report = ingest.quality_report(ingest.normalise_bars(df, "mem"), "X")
    assert report["gap_count"] == 1 and report["missing_bars"] == 5
    assert report["rows"] == 25


def test_halts_are_reported():
    df = good_frame(10)
    df.loc[4, ["open", "high", "low", "close"]] = 104.0
    df.loc[4, "volume"] = 0.0
    report = ingest.quality_report(ingest.normalise_bars(df, "mem"), "X")
    assert report["halt_bars"] == [df.loc[4, "timestamp"].isoformat()]


def test_find_raw_file_accepts_freqtrade_names(tmp_path):
    (tmp_path / "SOL_USDT-1h.feather").write_bytes(b"x")
    assert ingest.find_raw_file(tmp_path, "SOLUSDT").name == "SOL_USDT-1h.feather"
    with pytest.raises(BarsError, match="no raw bars for ETHUSDT"):
        ingest.find_raw_file(tmp_path, "ETHUSDT")
