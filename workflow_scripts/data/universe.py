"""Which (coin, window) pairs of the universe can be trained, decided when the workflow is planned.

A coin that lists late (APEUSDT in the wide universe has 5,000 hourly bars, BTCUSDT 45,000) may hold too few
bars in the span for ingest (`ingest.min_bars`) or for a window's three segments with a complete label each
(`splits.required_bars`). Such a coin, or such a window of a coin, is left out of the plan with its reason
(results/config/universe.json, the evaluation summary) instead of failing its ingest or split job halfway
through a run. The count is the raw file's distinct timestamps inside the span [start, end), read before
ingest. Ingest drops no row (a row it cannot accept stops its job with its own message), so the count is the
bar count the split sees; a file that cannot be counted here is kept, and its ingest job says what is wrong.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from workflow_scripts.data.ingest import BarsError, _parse_timestamps, read_raw


def bars_in_span(path: str | Path, start: str | None, end: str | None) -> int:
    """Distinct bar timestamps of a raw file inside [start, end) (UTC dates); of a parquet file only the time
    column is read."""
    path = Path(path)
    if path.suffix == ".parquet":
        try:
            names = pq.read_schema(path).names
            column = "timestamp" if "timestamp" in names else "date"
            col = pq.read_table(path, columns=[column]).column(0).to_pandas()
        except Exception as exc:
            raise BarsError(f"{path}: cannot be read as parquet: {exc}") from exc
    else:
        col = read_raw(path)["timestamp"]
    ts = _parse_timestamps(pd.Series(col), str(path))
    mask = pd.Series(True, index=ts.index)
    if start:
        mask &= ts >= pd.Timestamp(start, tz="UTC")
    if end:
        mask &= ts < pd.Timestamp(end, tz="UTC")
    return int(ts[mask].nunique())


@dataclass
class TrainablePlan:
    """The plan's universe: the coins with at least one trainable window, each coin's windows, and what was
    left out and why (`window` None: the whole coin)."""

    symbols: list[str]
    windows: dict[str, list[int]]
    skipped: list[dict] = field(default_factory=list)


def trainable_pairs(
    bars: dict[str, int | None], windows: list[int], required: dict[int, int], min_bars: int, span: str
) -> TrainablePlan:
    """`bars`: bars in the span per coin (None: not countable here, kept so that its ingest job reports);
    `required`: the bars each window needs. Coins keep their universe order, windows their config order."""
    symbols, per_symbol, skipped = [], {}, []
    for symbol, n in bars.items():
        if n is not None and n < min_bars:
            skipped.append(
                {
                    "symbol": symbol,
                    "window": None,
                    "bars": n,
                    "reason": f"{n} bars in the span {span}; ingest.min_bars is {min_bars}",
                }
            )
            continue
        kept = []
        for w in windows:
            if n is not None and n < required[w]:
                skipped.append(
                    {
                        "symbol": symbol,
                        "window": int(w),
                        "bars": n,
                        "reason": f"{n} bars in the span {span}; window {w} needs at least {required[w]} "
                        "(a complete label in each of train, validation and test)",
                    }
                )
            else:
                kept.append(int(w))
        if kept:
            symbols.append(symbol)
            per_symbol[symbol] = kept
    return TrainablePlan(symbols, per_symbol, skipped)


def count_bars(
    raw_files: dict[str, Path | None], start: str | None, end: str | None, cache: Path | None = None
) -> dict[str, int | None]:
    """Bars in the span per coin; None where the file is missing or unreadable (its ingest job says why).
    `cache`: a JSON file of counts keyed by file, size, mtime and span, so that a plan (and, on a cluster,
    every job's own Snakemake, which parses the workflow again) reads a raw file once, not at every start."""
    known = _read_cache(cache)
    counts, fresh = {}, {}
    for symbol, path in raw_files.items():
        if path is None:
            counts[symbol] = None
            continue
        stat = Path(path).stat()
        key = f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{start}|{end}"
        if key not in known:
            try:
                known[key] = fresh[key] = bars_in_span(path, start, end)
            except Exception:  # any malformed file: its ingest job validates it and names what is wrong
                known[key] = None  # not cached: the file may be fixed without its mtime changing
        counts[symbol] = known[key]
    if cache is not None and fresh:
        _write_cache(cache, {k: v for k, v in known.items() if v is not None})
    return counts


def _read_cache(cache: Path | None) -> dict:
    try:
        return dict(json.loads(Path(cache).read_text())) if cache is not None else {}
    except (OSError, ValueError):
        return {}  # no cache yet, or a torn one: count again


def _write_cache(cache: Path, counts: dict) -> None:
    """Atomic (write to a temporary file, rename), so that concurrent Snakemake processes never read half."""
    cache = Path(cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(counts, sort_keys=True))
    os.replace(tmp, cache)
