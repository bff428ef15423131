"""Plan-time universe: bars in the span counted from the raw file, coins and windows too short left out with
their reason (workflow_scripts/data/universe.py)."""

import pandas as pd
import pytest

from workflow_scripts.data.ingest import BarsError, ingest
from workflow_scripts.data.splits import required_bars
from workflow_scripts.data.universe import bars_in_span, count_bars, trainable_pairs


def bars(n: int, start="2024-01-01") -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq="h", tz="UTC")
    price = pd.Series(range(n), dtype="float64") * 0.01 + 100.0
    return pd.DataFrame(
        {"timestamp": ts, "open": price, "high": price + 1, "low": price - 1, "close": price, "volume": 1.0}
    )


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_bars_in_span_is_the_count_ingest_keeps(tmp_path, suffix):
    path = tmp_path / f"LATEUSDT_1h{suffix}"
    frame = bars(3000)
    frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    for start, end in [
        (None, None),
        ("2024-02-01", None),
        ("2024-01-15", "2024-03-01"),
        ("2030-01-01", None),
    ]:
        expected = len(ingest(path, "LATEUSDT", start, end)[0]) if start != "2030-01-01" else 0
        assert bars_in_span(path, start, end) == expected


def test_unreadable_or_missing_files_are_kept_for_ingest_to_report(tmp_path):
    bad = tmp_path / "BADUSDT_1h.parquet"
    bad.write_text("not parquet")
    with pytest.raises(BarsError, match=rf"^{bad}: cannot be read as parquet"):
        bars_in_span(bad, None, None)
    assert count_bars({"BADUSDT": bad, "GONEUSDT": None}, None, None) == {"BADUSDT": None, "GONEUSDT": None}


def test_trainable_pairs_leave_out_short_coins_and_windows_with_reasons():
    need = {w: required_bars(w, 0.6, 0.2, 24) for w in (5, 200)}
    assert need == {5: 148, 200: 1123}
    plan = trainable_pairs(
        {"BTCUSDT": 8000, "XRPUSDT": 1100, "DOGEUSDT": 500, "ODDUSDT": None},
        [5, 200],
        need,
        1000,
        "[2025-06-01, last bar)",
    )
    assert plan.symbols == ["BTCUSDT", "XRPUSDT", "ODDUSDT"]
    assert plan.windows == {"BTCUSDT": [5, 200], "XRPUSDT": [5], "ODDUSDT": [5, 200]}
    assert plan.skipped == [
        {
            "symbol": "XRPUSDT",
            "window": 200,
            "bars": 1100,
            "reason": "1100 bars in the span [2025-06-01, last bar); window 200 needs at least 1123 "
            "(a complete label in each of train, validation and test)",
        },
        {
            "symbol": "DOGEUSDT",
            "window": None,
            "bars": 500,
            "reason": "500 bars in the span [2025-06-01, last bar); ingest.min_bars is 1000",
        },
    ]


def test_counts_are_cached_by_file_and_span(tmp_path, monkeypatch):
    """A second plan reads no raw file; a changed file or another span is counted again."""
    from workflow_scripts.data import universe

    path, cache = tmp_path / "LATEUSDT_1h.parquet", tmp_path / "cache" / "bar_counts.json"
    bars(3000).to_parquet(path)
    read = []
    real = universe.bars_in_span
    monkeypatch.setattr(universe, "bars_in_span", lambda *a: read.append(a) or real(*a))
    assert count_bars({"LATEUSDT": path}, None, None, cache=cache) == {"LATEUSDT": 3000}
    assert count_bars({"LATEUSDT": path}, None, None, cache=cache) == {"LATEUSDT": 3000}
    assert len(read) == 1
    assert count_bars({"LATEUSDT": path}, "2024-02-01", None, cache=cache) == {"LATEUSDT": 3000 - 31 * 24}
    bars(2000).to_parquet(path)
    assert count_bars({"LATEUSDT": path}, None, None, cache=cache) == {"LATEUSDT": 2000}
    assert len(read) == 3
    cache.write_text("{torn")
    assert count_bars({"LATEUSDT": path}, None, None, cache=cache) == {"LATEUSDT": 2000}
