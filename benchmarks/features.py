"""Benchmark of workflow_scripts.features on the full demo bars (about 29.5k hourly rows per coin).

Prints, per case, the build time and the process's peak RSS (each case runs in its own child process so peaks
do not mix): `default` and `seed_scale` own-feature builds for one coin, and `cross` = add_cross_coin of three
coins' default tables (BTC + ETH, SOL). Run from the repository root:

    python benchmarks/features.py [--symbol BTCUSDT] [--cases default seed_scale cross]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "raw"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_case(case: str, symbol: str) -> dict:
    sys.path.insert(0, str(ROOT))
    import pandas as pd

    from workflow_scripts.config.schema import config_group
    from workflow_scripts.features import add_cross_coin, build_features

    default_spec = config_group("features")

    if case in ("default", "seed_scale"):
        bars = pd.read_parquet(RAW / f"{symbol}_1h.parquet")
        base = _rss_mb()
        t0 = time.perf_counter()
        table = build_features(bars, config_group("features", case))
        secs = time.perf_counter() - t0
        return {
            "case": case,
            "symbol": symbol,
            "rows": len(table),
            "features": table.shape[1] - 1,
            "seconds": round(secs, 2),
            "table_mb": round(table.memory_usage(index=False, deep=False).sum() / 2**20, 1),
            "rss_before_mb": round(base),
            "peak_rss_mb": round(_rss_mb()),
        }
    symbols = [symbol] + [s for s in ("ETHUSDT", "SOLUSDT", "BTCUSDT") if s != symbol][:2]
    tables = {s: build_features(pd.read_parquet(RAW / f"{s}_1h.parquet"), default_spec) for s in symbols}
    base = _rss_mb()
    t0 = time.perf_counter()
    cross = add_cross_coin(tables[symbols[0]], {s: tables[s] for s in symbols[1:]})
    secs = time.perf_counter() - t0
    return {
        "case": "cross",
        "symbol": symbol,
        "others": symbols[1:],
        "rows": len(cross),
        "features": cross.shape[1] - 1,
        "seconds": round(secs, 2),
        "table_mb": round(cross.memory_usage(index=False, deep=False).sum() / 2**20, 1),
        "rss_before_mb": round(base),
        "peak_rss_mb": round(_rss_mb()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--symbol", default="BTCUSDT")
    p.add_argument("--cases", nargs="*", default=["default", "seed_scale", "cross"])
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.symbol)))
        return
    print(
        f"{'case':<11}{'symbol':<9}{'rows':>7}{'features':>10}{'seconds':>9}"
        f"{'table MB':>10}{'peak RSS MB':>13}"
    )
    for case in args.cases:
        done = subprocess.run(
            [sys.executable, __file__, "--child", case, "--symbol", args.symbol],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{r['case']:<11}{r['symbol']:<9}{r['rows']:>7}{r['features']:>10}{r['seconds']:>9}"
            f"{r['table_mb']:>10}{r['peak_rss_mb']:>13}  (RSS before build {r['rss_before_mb']} MB)"
        )


if __name__ == "__main__":
    main()
