"""Stage-1 grid benchmark: planning time, wall time, variants per minute, peak memory, in-job fit seconds.

Runs the real workflow in a private copy (nothing under results/ is touched) on the embedded demo data.

    python benchmarks/stage1_grid.py                 # default grid: 3 coins x 6 windows x 48 targets = 864
    python benchmarks/stage1_grid.py --plan-only     # dry-run timings only (default and full grids)
    python benchmarks/stage1_grid.py --seed-scale    # also feature-build time and memory per coin, seed_scale

overhead = wall x cores / sum(fit seconds): how much of the machine went to anything but LightGBM's fitting.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

from tests.sandbox import copy_workflow, run_snakemake

DEMO = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def dry_run_seconds(workdir: Path, config: list[str]) -> float:
    started = time.perf_counter()
    run_snakemake(workdir, "-n", "--quiet", "all", config=config)
    return time.perf_counter() - started


def snakemake_benchmarks(workdir: Path, stage: str) -> list[dict]:
    rows = []
    for path in sorted((workdir / "results" / "benchmarks" / stage).rglob("*.tsv")):
        with open(path) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        rows.append(
            {
                "job": str(path.relative_to(workdir / "results" / "benchmarks")),
                "s": float(row["s"]),
                "max_rss_mb": float(row["max_rss"]) if row["max_rss"] not in ("", "-") else float("nan"),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plan-only", action="store_true")
    ap.add_argument("--seed-scale", action="store_true")
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wf = copy_workflow(Path(tmp) / "wf", symbols=DEMO)
        print("== planning (snakemake -n, nothing built yet) ==")
        for grid in ("default", "full"):
            seconds = dry_run_seconds(wf, [f"targets={grid}"])
            variants = len(DEMO) * 6 * (48 if grid == "default" else 120)
            print(f"dry run, targets={grid:7s} ({variants:5d} variants): {seconds:6.2f} s")
        if args.plan_only:
            return

        print("\n== full run, default grid ==")
        started = time.perf_counter()
        run_snakemake(wf, f"-c{args.cores}", timeout=7200)
        wall = time.perf_counter() - started
        logs = list((wf / "results" / "stage1").rglob("training_log.json"))
        fit = sum(json.loads(p.read_text())["fit_seconds"] or 0.0 for p in logs)
        trained = sum(
            1
            for p in (wf / "results" / "stage1").rglob("metrics.json")
            if json.loads(p.read_text())["status"] == "trained"
        )
        jobs = {stage: snakemake_benchmarks(wf, stage) for stage in ("features", "targets", "stage1")}
        peak = max(r["max_rss_mb"] for rows in jobs.values() for r in rows)
        print(f"wall time:            {wall:8.1f} s on {args.cores} cores")
        print(f"variants:             {len(logs):8d} ({trained} trained)")
        print(f"variants per minute:  {len(logs) / wall * 60:8.1f}")
        print(f"sum of fit seconds:   {fit:8.1f} s")
        print(f"overhead:             {wall * args.cores / fit:8.2f}  (wall x cores / fit seconds)")
        print(f"peak job memory:      {peak:8.0f} MB")
        for stage, rows in jobs.items():
            total = sum(r["s"] for r in rows)
            print(
                f"  {stage:10s} {len(rows):3d} jobs, {total:7.1f} job-seconds, "
                f"max {max(r['max_rss_mb'] for r in rows):6.0f} MB"
            )
        noop = time.perf_counter()
        run_snakemake(wf, "-n", "--quiet", "all")
        print(f"no-op dry run after the run: {time.perf_counter() - noop:.2f} s")

        if args.seed_scale:
            print("\n== features=seed_scale: feature build per coin ==")
            run_snakemake(
                wf,
                f"-c{args.cores}",
                "--forcerun",
                "build_features",
                *[f"results/features/base/{s}.parquet" for s in DEMO],
                config=["features=seed_scale"],
                timeout=7200,
            )
            for r in snakemake_benchmarks(wf, "features/base"):
                print(f"{r['job']:40s} {r['s']:8.1f} s  {r['max_rss_mb']:8.0f} MB")


if __name__ == "__main__":
    main()
