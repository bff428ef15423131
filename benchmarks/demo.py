"""Benchmark: the demo (scripts/demo.sh without the install) in a scratch copy of the workflow, and the change
table on its finished run.

    python benchmarks/demo.py [--workdir DIR] [--cores 2] [--no-changes] [--out FILE.json]

Runs `snakemake --profile profiles/local -c<cores> --config targets=demo tuning=demo` (scripts/demo.sh's
command) on the 3 demo coins from a fresh copy (tests/sandbox.py) and prints:
- wall time and CPU time (user + system of every process the run started);
- per stage (rules/<stage>.smk): jobs, CPU seconds in the stage functions and in the job processes, and the
  largest peak memory of a job, from the last line each job writes to its log (the rules' benchmark files
  sample every 0.5 s and miss the sub-second jobs);
- CPU split three ways: inside the jobs' stage functions (useful compute: fits, predictions, feature and
  label computation, as each job records it on the last line of its log, workflow_scripts/job.py), the jobs'
  start-up (interpreter and imports), and outside the jobs (Snakemake itself, shells, runtime guards);
- overhead = wall x cores / CPU in the jobs' stage functions: 1.0 would be both cores busy with useful work
  for the whole run; above it are start-up, Snakemake's scheduling and idle cores where the DAG narrows. The
  stricter "fit" figure divides by the fit seconds the jobs record (stage-1 variants' `fit_seconds`, tuning
  studies' `spent_seconds`);
- unless --no-changes: for each row of the change table (tests/change_table.py, docs/ARCHITECTURE.md) the jobs
  `snakemake -n` plans on the finished demo against the expected ones.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.change_table import changes, job_of, planned_and_expected  # noqa: E402
from tests.reliability.conftest import jobs_of_dry_run  # noqa: E402
from tests.sandbox import copy_workflow, snakemake_cmd  # noqa: E402
from workflow_scripts.job import CPU_LINE  # noqa: E402

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
DEMO = ["targets=demo", "tuning=demo"]  # what scripts/demo.sh runs
NEW_SYMBOL, NEW_WINDOW = "XRPUSDT", 10


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# Snakemake in a Python that prints the CPU of its own process (scheduler, DAG, file checks, benchmark
# threads; not its jobs) when it exits.
SELF_CPU = (
    "import atexit, resource, sys; "
    "atexit.register(lambda: print('snakemake process cpu', "
    "sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), file=sys.stderr)); "
    "sys.argv[0] = 'snakemake'; from snakemake.cli import main; main()"
)


def run(workdir: Path, *args: str, config: list[str], cores: int) -> subprocess.CompletedProcess:
    cmd = snakemake_cmd(*args, config=config, cores=cores)
    cmd[1:3] = ["-c", SELF_CPU]  # instead of -m snakemake
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)


def job_table(workdir: Path) -> pd.DataFrame:
    """One row per finished job from the last line it writes to its log (workflow_scripts/job.py
    `cpu_line`): its rule (the entry's function), its stage (rules/<stage>.smk), the CPU seconds of its stage
    function and of its whole process, and the process's peak memory."""
    rows = [
        {
            "stage": entry.partition(".")[0],
            "rule": entry.partition(".")[2],
            "function_cpu_s": float(fn),
            "process_cpu_s": float(proc),
            "peak_rss_mb": float(rss),
        }
        for log in (workdir / "logs").rglob("*.log")
        for entry, fn, proc, rss in CPU_LINE.findall(log.read_text(errors="replace"))
    ]
    return pd.DataFrame(rows)


def per_stage(jobs: pd.DataFrame) -> pd.DataFrame:
    return (
        jobs.groupby("stage")
        .agg(
            jobs=("rule", "size"),
            function_cpu_s=("function_cpu_s", "sum"),
            process_cpu_s=("process_cpu_s", "sum"),
            peak_rss_mb=("peak_rss_mb", "max"),
        )
        .sort_values("process_cpu_s", ascending=False)
    )


def fit_seconds(workdir: Path) -> float:
    """Seconds of model fitting the jobs record: stage-1 fits and tuning trials."""
    res = workdir / "results"
    total = 0.0
    for log in res.glob("stage1/*/w*/*/training_log.json"):
        total += float(json.loads(log.read_text()).get("fit_seconds") or 0.0)
    for result in res.glob("tuning/**/*.json"):
        total += float(json.loads(result.read_text()).get("spent_seconds") or 0.0)
    return total


def change_rows(workdir: Path, cores: int) -> list[dict]:
    """Planned vs expected jobs of each change on the finished demo (raw bars of the added coin copied in)."""
    raw = workdir / "data" / "raw"
    (raw / f"{NEW_SYMBOL}_1h.parquet").write_bytes(
        (REPO / "data" / "raw" / f"{NEW_SYMBOL}_1h.parquet").read_bytes()
    )
    windows = (5, 20)
    table = changes(SYMBOLS, windows, NEW_SYMBOL, NEW_WINDOW)

    def plan(config, *args):
        proc = run(workdir, "-n", *args, config=config, cores=cores)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        return {job_of(r, o) for r, o in jobs_of_dry_run(proc.stdout + proc.stderr) if r != "all"}

    every = plan(DEMO, "--forceall")
    rows = []
    for change in table:
        if change.name.startswith("remove a coin"):
            continue  # needs a run with the added coin; tests/reliability/test_change_plans.py covers it
        planned, expected = planned_and_expected(
            workdir, change, plan, [], {"targets": "demo", "tuning": "demo"}, every
        )
        rows.append(
            {
                "change": change.name,
                "planned": len(planned),
                "expected": len(expected),
                "equal": planned == expected,
            }
        )
    return rows


LOAD_BEFORE = os.getloadavg()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a new temp folder)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--no-changes", action="store_true", help="skip the change table")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = ap.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="swingflow-demo-")) / "wf"
    copy_workflow(workdir, symbols=SYMBOLS)
    cpu0, t0 = children_cpu(), time.monotonic()
    proc = run(workdir, "--profile", "profiles/local", config=DEMO, cores=args.cores)
    wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
    if proc.returncode != 0:
        sys.exit(f"demo failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    logged = job_table(workdir)
    stages = per_stage(logged)
    fits = fit_seconds(workdir)
    jobs = sum(1 for line in proc.stderr.splitlines() if line.startswith("Finished jobid"))
    useful, in_jobs = logged["function_cpu_s"].sum(), logged["process_cpu_s"].sum()
    found = re.findall(r"^snakemake process cpu ([0-9.]+)$", proc.stderr, re.M)
    snakemake_cpu = float(found[-1]) if found else float("nan")
    figures = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python "
        f"{platform.python_version()}",
        "load_average_before": LOAD_BEFORE,
        "cores": args.cores,
        "jobs": jobs,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "job_function_cpu_s": round(useful, 1),
        "job_process_cpu_s": round(in_jobs, 1),
        "outside_jobs_cpu_s": round(cpu - in_jobs, 1),
        "snakemake_process_cpu_s": round(snakemake_cpu, 1),
        "fit_s": round(fits, 1),
        "overhead": round(wall * args.cores / useful, 3),
        "overhead_fits": round(wall * args.cores / fits, 3) if fits else None,
    }
    print(f"demo: {jobs} jobs, wall {wall / 60:.1f} min, CPU {cpu / 60:.1f} min on {args.cores} cores")
    print(
        f"CPU: {useful:.0f} s in the {len(logged)} jobs' stage functions, {in_jobs - useful:.0f} s in their "
        f"start-up (interpreter, imports), {cpu - in_jobs:.0f} s outside the jobs, of which "
        f"{snakemake_cpu:.0f} s in the Snakemake process (the rest: shells, runtime guards)"
    )
    print(
        f"overhead = wall x cores / CPU in the jobs' functions: {figures['overhead']:.2f} (goal 1.15); "
        f"over recorded fit seconds only: {figures['overhead_fits']}"
    )
    print("\nper stage (rules/<stage>.smk; each job's CPU and peak memory from the last line of its log):")
    print(stages.round(1).to_string())
    figures["stages"] = stages.round(2).reset_index().to_dict(orient="records")
    if not args.no_changes:
        rows = change_rows(workdir, args.cores)
        print("\nchange table on the finished demo (planned vs expected jobs):")
        print(pd.DataFrame(rows).to_string(index=False))
        figures["changes"] = rows
    print(f"\nworkdir: {workdir}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
