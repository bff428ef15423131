"""Ingest: read raw OHLCV bars (CSV, parquet, freqtrade feather/JSON), validate them, normalise them.

Output contract (docs/CONTRACTS.md): `timestamp` (datetime64[ns, UTC], candle open time; timezone-naive
input is read as UTC), float64 OHLCV, sorted, unique. Gaps are kept and reported, never filled: a filled bar
would be a price nobody traded at. Data-quality checks: workflow_scripts/data/quality.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts.data import quality

PRICE_COLUMNS = ("open", "high", "low", "close")
COLUMNS = ("timestamp",) + PRICE_COLUMNS + ("volume",)
SUFFIXES = (".parquet", ".csv", ".feather", ".json")
BAR = pd.Timedelta(hours=1)


class BarsError(ValueError):
    """Bad raw bars; the message names the file, the row and the problem."""


class QualityError(BarsError):
    """A data-quality check set to `stop` found something (workflow_scripts/data/quality.py)."""


def read_raw(path: str | Path) -> pd.DataFrame:
    """Read one raw file into a frame with the contract's column names (not yet validated)."""
    path = Path(path)
    if not path.exists():
        raise BarsError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise BarsError(f"{path}: file is empty (expected columns {', '.join(COLUMNS)})")
    try:
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
        elif path.suffix == ".csv":
            df = pd.read_csv(path)
        elif path.suffix == ".feather":
            df = pd.read_feather(path)
        elif path.suffix == ".json":
            df = _read_freqtrade_json(path)
        else:
            raise BarsError(f"{path}: unsupported file type {path.suffix!r}; expected one of {SUFFIXES}")
    except BarsError:
        raise
    except Exception as exc:  # the reader's own message says what is malformed
        raise BarsError(f"{path}: cannot be read as {path.suffix[1:]}: {exc}") from exc
    if "timestamp" not in df.columns and "date" in df.columns:  # freqtrade's name for the candle open time
        df = df.rename(columns={"date": "timestamp"})
    return df


def _read_freqtrade_json(path: Path) -> pd.DataFrame:
    """freqtrade's JSON: a list of [ms_timestamp, open, high, low, close, volume] rows."""
    with open(path, encoding="utf-8") as fh:
        rows = json.load(fh)
    if isinstance(rows, list) and rows and isinstance(rows[0], list):
        df = pd.DataFrame(rows, columns=list(COLUMNS)[: len(rows[0])])
        df["timestamp"] = pd.to_datetime(df["timestamp"], unit="ms", utc=True)
        return df
    return pd.DataFrame(rows)


def normalise_bars(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate and normalise; raises BarsError naming `source`, the row and the problem."""
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise BarsError(
            f"{source}: missing column(s) {missing}; expected {list(COLUMNS)} (freqtrade's 'date' is "
            f"accepted for 'timestamp'), found {list(raw.columns)}"
        )
    if len(raw) == 0:
        raise BarsError(f"{source}: no rows")
    df = raw.loc[:, list(COLUMNS)].copy()
    df["timestamp"] = _parse_timestamps(df["timestamp"], source)
    for col in COLUMNS[1:]:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise BarsError(f"{source}: row {row}: column '{col}' is not a number: {df[col].iloc[row]!r}")
        df[col] = values.astype("float64")
    _check_order(df, source)
    _check_prices(df, source)
    return df.reset_index(drop=True)


def _parse_timestamps(col: pd.Series, source: str) -> pd.Series:
    """Candle open times as datetime64[ns, UTC]: timezone-naive values (naive datetimes, ISO strings without
    an offset) are read as UTC, as exchanges and freqtrade write them; aware values are converted to UTC;
    numbers are epoch milliseconds."""
    if pd.api.types.is_datetime64_any_dtype(col):
        ts = col
    elif pd.api.types.is_numeric_dtype(col):
        ts = pd.to_datetime(col, unit="ms", utc=True, errors="coerce")
    else:
        ts = pd.to_datetime(col, utc=True, errors="coerce", format="mixed")
    bad = ts.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise BarsError(
            f"{source}: row {row}: unparseable timestamp {col.iloc[row]!r} (expected ISO 8601 or epoch ms)"
        )
    if ts.dt.tz is None:
        ts = ts.dt.tz_localize("UTC")
    return ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


def _check_order(df: pd.DataFrame, source: str) -> None:
    ts = df["timestamp"]
    dup = ts.duplicated(keep="first")
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise BarsError(
            f"{source}: row {row}: duplicate timestamp {ts.iloc[row]} (timestamps must be unique)"
        )
    back = ts.diff() < pd.Timedelta(0)
    if back.any():
        row = int(np.flatnonzero(back.to_numpy())[0])
        raise BarsError(
            f"{source}: row {row}: timestamps not sorted ({ts.iloc[row]} comes after {ts.iloc[row - 1]})"
        )
    off_grid = (ts - ts.dt.floor("h")) != pd.Timedelta(0)
    if off_grid.any():
        row = int(np.flatnonzero(off_grid.to_numpy())[0])
        raise BarsError(f"{source}: row {row}: timestamp {ts.iloc[row]} is not on the hourly grid")


def _check_prices(df: pd.DataFrame, source: str) -> None:
    prices = df.loc[:, list(PRICE_COLUMNS)].to_numpy()
    checks = [
        (~np.isfinite(prices).all(axis=1), "price is NaN or infinite"),
        ((prices <= 0).any(axis=1), "price is zero or negative"),
        (df["high"].to_numpy() < df["low"].to_numpy(), "high < low"),
        (
            (df["high"].to_numpy() < np.maximum(df["open"], df["close"]).to_numpy())
            | (df["low"].to_numpy() > np.minimum(df["open"], df["close"]).to_numpy()),
            "open/close outside the high-low range",
        ),
        (~np.isfinite(df["volume"].to_numpy()) | (df["volume"].to_numpy() < 0), "volume is NaN or negative"),
    ]
    for bad, problem in checks:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            values = df.iloc[row][list(COLUMNS[1:])].to_dict()
            raise BarsError(f"{source}: row {row} ({df['timestamp'].iloc[row]}): {problem}: {values}")


def clip_span(df: pd.DataFrame, start: str | None, end: str | None) -> pd.DataFrame:
    """Keep bars in [start, end) (UTC dates); the environment sets the span."""
    mask = np.ones(len(df), dtype=bool)
    if start:
        mask &= (df["timestamp"] >= pd.Timestamp(start, tz="UTC")).to_numpy()
    if end:
        mask &= (df["timestamp"] < pd.Timestamp(end, tz="UTC")).to_numpy()
    return df.loc[mask].reset_index(drop=True)


def quality_report(df: pd.DataFrame, symbol: str) -> dict:
    """Gaps, halts and basic facts: the data-quality report that travels with each symbol."""
    ts = df["timestamp"]
    step = ts.diff()
    gap_rows = np.flatnonzero((step > BAR).to_numpy())
    gaps = [
        {
            "last_bar_before": ts.iloc[i - 1].isoformat(),
            "first_bar_after": ts.iloc[i].isoformat(),
            "missing_bars": int(step.iloc[i] / BAR) - 1,
        }
        for i in gap_rows
    ]
    flat = (df["open"] == df["high"]) & (df["high"] == df["low"]) & (df["low"] == df["close"])
    halts = flat & (df["volume"] == 0)
    return {
        "symbol": symbol,
        "rows": int(len(df)),
        "first": ts.iloc[0].isoformat(),
        "last": ts.iloc[-1].isoformat(),
        "gap_count": len(gaps),
        "missing_bars": int(sum(g["missing_bars"] for g in gaps)),
        "gaps": gaps,
        "halt_bars": [t.isoformat() for t in ts[halts]],
        "zero_volume_bars": int((df["volume"] == 0).sum()),
        "duplicates": 0,
    }


def find_raw_file(raw_dir: str | Path, symbol: str) -> Path:
    """`{raw_dir}/{SYMBOL}_1h.<ext>`, or freqtrade's `{BASE}_USDT-1h.<ext>` naming."""
    raw_dir = Path(raw_dir)
    candidates = [raw_dir / f"{symbol}_1h{s}" for s in SUFFIXES]
    if symbol.endswith("USDT"):
        candidates += [raw_dir / f"{symbol[:-4]}_USDT-1h{s}" for s in SUFFIXES]
    found = [c for c in candidates if c.exists()]
    if not found:
        raise BarsError(
            f"no raw bars for {symbol} in {raw_dir}: expected one of {[c.name for c in candidates]}"
        )
    return found[0]


def ingest(
    path: str | Path,
    symbol: str,
    start: str | None,
    end: str | None,
    min_bars: int = 1,
    checks: dict | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Read, validate, clip to [start, end) and check one symbol's raw bars: (bars, quality report).

    `checks` is the ingest group's quality settings (config/ingest; workflow_scripts/data/quality.py): their
    findings go into the report, and a finding of a check whose action is `stop` raises QualityError naming
    the file, the rows and the rule, so the caller writes nothing."""
    bars = normalise_bars(read_raw(path), str(path))
    offset = 0 if not start else int((bars["timestamp"] < pd.Timestamp(start, tz="UTC")).sum())
    bars = clip_span(bars, start, end)
    if len(bars) < min_bars:
        raise BarsError(
            f"{path}: {symbol} has {len(bars)} bars in the span [{start}, {end}); at least {min_bars} are "
            "needed (ingest.min_bars)"
        )
    report = quality_report(bars, symbol)
    if checks is not None:
        result = quality.check_bars(bars, symbol, checks, end, row_offset=offset)
        stops = quality.stopping(result)
        if stops:
            counts = {name: c["count"] for name, c in result["checks"].items()}
            raise QualityError(quality.stop_message(str(path), stops, counts))
        report.update(result)
    return bars, report
