"""Cross-coin modes compared on the demo data: cost of the per-coin table and stage-1 validation macro AP.

For each mode (features.cross_coin: `all_pairs`, `basket`, `basket+factors` = basket plus the mean,
dispersion and relative factors of tech__ret) and each coin, the script builds the coin's cross-coin table
with the workflow's own functions (ingest, build_features, cross_coin_table) and reports its columns,
in-memory MB, parquet MB (artifacts.write_parquet) and seconds; then a cheap stage 1 on it with the
project's functions and config defaults: targets of the `small` grid (8 per window) for the given windows,
chronological split, screening (training rows of the largest window's split), selection per window
aggregated per coin, and stage-1 LightGBM per window (train_window). Only the validation segment is
reported: the choice of a default must not read the test segment. A table identical to one already scored
(SOL in all_pairs and basket: its basket is every other demo coin) reuses that score.
Run from the repository root:

    python benchmarks/cross_coin.py                       # BTC/ETH/SOL, env local-dev span, windows 5 20
    python benchmarks/cross_coin.py --windows 20 --modes basket all_pairs
    python benchmarks/cross_coin.py --symbols ADAUSDT AVAXUSDT BTCUSDT DOGEUSDT ETHUSDT LINKUSDT SOLUSDT \
        XRPUSDT --score SOLUSDT XRPUSDT            # the 8 majors, stage 1 on two coins outside the basket
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workflow_scripts import artifacts  # noqa: E402
from workflow_scripts.config.schema import config_group  # noqa: E402
from workflow_scripts.data import ingest  # noqa: E402
from workflow_scripts.data.splits import chronological_split  # noqa: E402
from workflow_scripts.features import build_features, cross_coin_table, reference_coins  # noqa: E402
from workflow_scripts.selection.feature_screening import (  # noqa: E402
    screen_features,
    segment_positions,
    training_rows,
)
from workflow_scripts.selection.feature_selection import (  # noqa: E402
    aggregate_selection,
    feature_inputs,
    plan_window,
    select_window,
)
from workflow_scripts.targets.grammar import horizon_bars, target_grid  # noqa: E402
from workflow_scripts.targets.swing_targets import build_targets  # noqa: E402
from workflow_scripts.training.stage1 import train_window  # noqa: E402

FACTORS = ["mean", "dispersion", "relative"]


def mode_specs(base: dict) -> dict[str, dict]:
    return {
        "all_pairs": {**base, "mode": "all_pairs"},
        "basket": {**base, "mode": "basket", "factors": []},
        "basket+factors": {**base, "mode": "basket", "factors": FACTORS, "factor_inputs": ["tech__ret"]},
    }


def stage1_scores(table: pd.DataFrame, bars: pd.DataFrame, windows: list[int], cfg: dict) -> dict:
    """Screening -> selection (windows aggregated) -> stage 1 per window; validation macro AP per variant."""
    tcfg, scfg = cfg["targets"], cfg["split"]
    grid = target_grid({**tcfg, "windows": windows})
    ids = [g["id"] for g in grid]
    per_window = {}
    for w in windows:
        h = horizon_bars(w, tcfg)
        targets = build_targets(bars, w, grid, h, tcfg["sigma_min_bars"])
        split = chronological_split(
            bars["timestamp"], h, scfg["train_frac"], scfg["validation_frac"], scfg["embargo_bars"]
        )
        per_window[w] = (targets, split)
    started = time.perf_counter()
    _, widest = per_window[max(windows)]
    train = training_rows(table, widest)
    kept, _ = screen_features(train[feature_inputs(table.columns)], cfg["screening"])
    tops = []
    sel = cfg["selection"]
    for w in windows:
        targets, split = per_window[w]
        pos = segment_positions(split, "train", len(targets))
        union, variants = plan_window(targets, pos, ids, sel, split["horizon"])
        X = table[kept].to_numpy(np.float32)[union]
        tops += list(select_window(X, kept, union, variants, sel).values())
    agg = aggregate_selection(tops, sel["keep_min"], sel["keep_max"], sel["score_coverage"])
    selected = agg.loc[agg["selected"], "feature"].tolist()
    aps = []
    for w in windows:
        targets, split = per_window[w]
        results = train_window(table[["timestamp", *selected]], targets, split, ids, cfg["stage1"])
        aps += [
            r.metrics["validation_average_precision"] for r in results if r.metrics["status"] == "trained"
        ]
    return {
        "kept": len(kept),
        "selected": len(selected),
        "cross_selected": sum("__" in c and c.split("__")[0].isupper() for c in selected),
        "variants": len(aps),
        "val_ap": float(np.mean(aps)) if aps else float("nan"),
        "aps": aps,
        "stage_seconds": time.perf_counter() - started,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", nargs="*", default=["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    ap.add_argument("--windows", nargs="*", type=int, default=[5, 20])
    ap.add_argument("--modes", nargs="*", default=["all_pairs", "basket", "basket+factors"])
    ap.add_argument("--env", default="local-dev", help="env option whose data span is used")
    ap.add_argument("--score", nargs="*", default=None, help="coins to run stage 1 on (default: all)")
    ap.add_argument("--no-ap", action="store_true", help="cost figures only")
    args = ap.parse_args()

    env = config_group("env", args.env)["data"]
    features = config_group("features")
    own_spec = {k: v for k, v in features.items() if k != "cross_coin"}
    cfg = {
        "targets": config_group("targets", "small"),
        "split": config_group("split"),
        "screening": config_group("screening"),
        "selection": config_group("selection"),
        "stage1": config_group("stage1"),
    }
    bars, base, build_s = {}, {}, {}
    for s in args.symbols:
        path = ingest.find_raw_file(ROOT / env["raw_dir"], s)
        bars[s], _ = ingest.ingest(path, s, env["start"], env["end"])
        t0 = time.perf_counter()
        base[s] = build_features(bars[s], own_spec)
        build_s[s] = time.perf_counter() - t0
    print(
        f"data: {', '.join(f'{s} {len(b)} bars' for s, b in bars.items())}; env {args.env} span from "
        f"{env['start']}; own features {base[args.symbols[0]].shape[1] - 1} columns; basket "
        f"{features['cross_coin']['basket']}"
    )
    print(f"base build seconds: {', '.join(f'{s} {v:.1f}' for s, v in build_s.items())}\n")

    specs = {m: v for m, v in mode_specs(features["cross_coin"]).items() if m in args.modes}
    rows, scored = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, cc in specs.items():
            for s in args.symbols:
                refs = reference_coins(s, args.symbols, cc)
                t0 = time.perf_counter()
                table = cross_coin_table(s, base[s], {r: base[r] for r in refs}, cc)
                path = Path(tmp) / f"{mode}_{s}.parquet"
                artifacts.write_parquet(path, table)
                seconds = time.perf_counter() - t0
                row = {
                    "mode": mode,
                    "symbol": s,
                    "refs": len(refs),
                    "columns": table.shape[1] - 1,
                    "mem_mb": table.memory_usage(index=False, deep=False).sum() / 2**20,
                    "file_mb": path.stat().st_size / 2**20,
                    "seconds": seconds,
                }
                if not args.no_ap and (args.score is None or s in args.score):
                    key = (s, tuple(table.columns))
                    if key not in scored:
                        scored[key] = stage1_scores(table, bars[s], args.windows, cfg)
                    row |= scored[key]
                rows.append(row)
                path.unlink()
                print_row(row, header=len(rows) == 1)
    summarise(pd.DataFrame(rows), args)


def print_row(r: dict, header: bool) -> None:
    if header:
        print(
            f"{'mode':<15}{'symbol':<9}{'refs':>5}{'columns':>8}{'mem MB':>8}{'file MB':>8}{'sec':>6}"
            f"{'kept':>6}{'sel':>5}{'x-sel':>6}{'var':>5}{'val AP':>8}"
        )
    tail = ""
    if "val_ap" in r:
        tail = (
            f"{r['kept']:>6}{r['selected']:>5}{r['cross_selected']:>6}{r['variants']:>5}{r['val_ap']:>8.4f}"
        )
    print(
        f"{r['mode']:<15}{r['symbol']:<9}{r['refs']:>5}{r['columns']:>8}{r['mem_mb']:>8.1f}"
        f"{r['file_mb']:>8.1f}{r['seconds']:>6.1f}{tail}",
        flush=True,
    )


def summarise(df: pd.DataFrame, args) -> None:
    print("\nper mode (mean over coins):")
    cols = ["columns", "mem_mb", "file_mb", "seconds"] + (["val_ap"] if "val_ap" in df else [])
    print(df.groupby("mode", sort=False)[cols].mean().round(4).to_string())
    scored = df[df["aps"].map(lambda a: isinstance(a, list))] if "aps" in df else df.iloc[:0]
    if len(scored) and "all_pairs" in set(scored["mode"]):
        ref = scored[scored["mode"] == "all_pairs"].set_index("symbol")["aps"]
        print("\nvalidation macro AP minus all_pairs, paired over the same variants:")
        for mode in [m for m in scored["mode"].unique() if m != "all_pairs"]:
            per = scored[scored["mode"] == mode].set_index("symbol")["aps"]
            diffs = {s: np.subtract(a, ref[s]) for s, a in per.items() if s in ref}
            every = np.concatenate(list(diffs.values()))
            coins = ", ".join(f"{s} {d.mean():+.4f}" for s, d in diffs.items())
            se = every.std(ddof=1) / np.sqrt(len(every)) if len(every) > 1 else float("nan")
            print(
                f"  {mode:<15} {every.mean():+.4f} (se {se:.4f}; {int((every > 0).sum())} better, "
                f"{int((every < 0).sum())} worse of {len(every)}; {coins})"
            )
    widths = df.groupby("mode", sort=False)["columns"].max()
    n, own = len(args.symbols), int(df["columns"].min())
    if "all_pairs" in widths:
        per_coin = widths["all_pairs"] / n
        print(
            f"\ncolumns of the widest coin table: all_pairs grows as {per_coin:.0f} x N coins ("
            f"{per_coin * 400:,.0f} at N = 400); "
            + ", ".join(f"{m} {w:,} at any N" for m, w in widths.items() if m != "all_pairs")
            + f"; narrowest table here {own:,}"
        )


if __name__ == "__main__":
    main()
