"""The plan at hundreds of coins: a synthetic universe grown from real bars, the dry run, a no-op rerun and
the per-job cost at two universe sizes (issue 16, docs/SCALE.md).

The universe: the real BTCUSDT and ETHUSDT of ../shared/data/binance-wide-1h/ (the default cross-coin basket
and stage 2's representative coins) plus N-2 synthetic coins `S0001USDT`, ... Synthetic coin i is a stationary
block bootstrap (Politis-Romano, mean block 168 bars, seed 16 + i) of one real coin's bar vectors (close-to-close
log return, open gap, upper and lower wick, volume), listed at a date spread over the span by a golden-ratio
sequence of i, so coin i is the same file in every universe size and the listings cover the span for any N.
Returns are clipped at +-35 % per bar so that ingest's scale check (config/ingest, `stop`) never fires on a
resampling artefact; each coin is checked with the ingest's own quality functions. Files go into a scratch copy
of the workflow (tests/sandbox.py) as data/raw/<SYMBOL>_1h.parquet, written at run time, never committed, with
a universe config `scale<N>` beside them.

Parts (each prints a table; the figures are in docs/SCALE.md):

    python benchmarks/scale.py plan  [--sizes 50 100 200 400]   # dry-run time, peak RSS, jobs per coin, plus
                                                                # the Slurm profile's submitted jobs
    python benchmarks/scale.py noop  [--sizes 50 400]           # touch every output (recording metadata),
                                                                # then time the dry run of the finished plan
    python benchmarks/scale.py jobs  [--sizes 50 400]           # per-job disk and peak RSS of the features,
                                                                # selection and stage-1 jobs of two coins
    python benchmarks/scale.py registry [--coins 400]           # register_models, dashboard, champions

`--workdir DIR` keeps the scratch copies (default: a temporary folder removed at the end); `--profile` adds a
cProfile of one in-process dry run (the 10 most expensive functions). The target grid is the config's default
(48 targets per window, 6 windows): the grid does not change the job count (a job loops over its targets).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sandbox import copy_workflow  # noqa: E402
from workflow_scripts import artifacts  # noqa: E402
from workflow_scripts.config.schema import config_group  # noqa: E402
from workflow_scripts.data import quality  # noqa: E402

WIDE = ROOT.parent / "shared" / "data" / "binance-wide-1h"
REAL = ("BTCUSDT", "ETHUSDT")  # the basket and the representatives: real series, listed first
BLOCK_BARS = 168  # mean block of the stationary bootstrap: a week of hourly bars keeps volatility clusters
MAX_RETURN = 0.35  # |log return| per bar: below ingest.scale.min_factor's log(1.5) = 0.405
LAST_LISTING = 0.85  # the latest listing, as a fraction of the span: >= ~6,800 bars for the last coin
GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
SEED = 16


# ---- the synthetic universe -----------------------------------------------------------------------------------
def synthetic_symbol(i: int) -> str:
    return f"S{i:04d}USDT"


def universe_symbols(n: int) -> list[str]:
    """The N coins of a universe: the real basket, then synthetic coins 1..N-2 (a prefix of every larger N)."""
    return list(REAL[: min(n, len(REAL))]) + [synthetic_symbol(i) for i in range(1, n - len(REAL) + 1)]


def listing_fraction(i: int) -> float:
    """Where in the span coin i lists (0 = the first bar): a golden-ratio sequence, evenly spread for any N."""
    return float((0.5 + i * GOLDEN) % 1.0) * LAST_LISTING


def bar_vectors(bars: pd.DataFrame) -> np.ndarray:
    """Per bar (from the second): close-to-close log return, open gap log(open / previous close), upper wick
    log(high / max(open, close)), lower wick log(min(open, close) / low), volume."""
    o, h, lo, c, v = (bars[k].to_numpy(float) for k in ("open", "high", "low", "close", "volume"))
    body_hi, body_lo = np.maximum(o, c), np.minimum(o, c)
    return np.column_stack(
        [
            np.diff(np.log(c)),
            np.log(o[1:] / c[:-1]),
            np.log(np.maximum(h[1:], body_hi[1:]) / body_hi[1:]),
            np.log(body_lo[1:] / np.minimum(lo[1:], body_lo[1:])),
            v[1:],
        ]
    )


def stationary_bootstrap(m: int, n: int, mean_block: int, rng: np.random.Generator) -> np.ndarray:
    """n row indices into m rows: blocks of consecutive rows (wrapping) with geometric lengths of mean
    `mean_block`, each starting at a uniform row (Politis and Romano 1994)."""
    new_block = rng.random(n) < 1.0 / mean_block
    new_block[0] = True
    block = np.cumsum(new_block) - 1
    starts = rng.integers(0, m, size=int(block[-1]) + 1)
    first_pos = np.flatnonzero(new_block)
    return (starts[block] + np.arange(n) - first_pos[block]) % m


def synthesize(source: pd.DataFrame, timestamps: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    """Bars on `timestamps` whose bar vectors are a stationary bootstrap of `source`'s."""
    vec = bar_vectors(source)
    rows = vec[stationary_bootstrap(len(vec), len(timestamps), BLOCK_BARS, rng)]
    ret = np.clip(rows[:, 0], -MAX_RETURN, MAX_RETURN)
    gap = np.clip(rows[:, 1], -MAX_RETURN, MAX_RETURN)
    p0 = float(source["close"].iloc[0]) * float(np.exp(rng.normal(0.0, 1.5)))
    close = p0 * np.exp(np.cumsum(ret))
    open_ = np.r_[p0, close[:-1]] * np.exp(gap)
    high = np.maximum(open_, close) * np.exp(rows[:, 2])
    low = np.minimum(open_, close) * np.exp(-rows[:, 3])
    return pd.DataFrame(
        {"timestamp": timestamps, "open": open_, "high": high, "low": low, "close": close, "volume": rows[:, 4]}
    )


def read_wide() -> dict[str, pd.DataFrame]:
    manifest = json.loads((WIDE / "MANIFEST.json").read_text())
    return {m["symbol"]: pd.read_parquet(WIDE / m["file"]) for m in manifest}


def write_universe(raw_dir: Path, n: int, wide: dict[str, pd.DataFrame]) -> dict:
    """The raw files of an N-coin universe into raw_dir (existing files are kept: coin i never changes)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    end = max(df["timestamp"].iloc[-1] for df in wide.values())
    start = min(df["timestamp"].iloc[0] for df in wide.values())
    span = pd.date_range(start, end, freq="1h")
    sources = sorted(wide)
    scale_spec = config_group("ingest")["scale"]
    bars_total = 0
    for idx, symbol in enumerate(universe_symbols(n)):
        path = raw_dir / f"{symbol}_1h.parquet"
        if not path.exists():
            if symbol in REAL:
                bars = wide[symbol]
            else:
                i = int(symbol[1:5])
                rng = np.random.default_rng(SEED + i)
                first = int(listing_fraction(i) * len(span))
                bars = synthesize(wide[sources[i % len(sources)]], span[first:], rng)
                stretch = quality.scale_findings(bars, symbol, scale_spec)
                if stretch:  # never seen; the clip makes it near impossible
                    raise RuntimeError(f"synthetic {symbol} trips ingest's scale check: {stretch[0]['rule']}")
            artifacts.write_parquet(path, bars)
        bars_total += len(pd.read_parquet(path, columns=["close"]))
    return {"coins": n, "bars": bars_total, "span": [str(span[0]), str(span[-1])]}
