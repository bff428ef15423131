"""A slice of the synthetic universe run for real through a local single-node Slurm (issue 16, docs/SCALE.md
"50-coin Slurm slice").

    python benchmarks/slurm_slice.py [--coins 50] [--until all|stage1|selection|features] [-j 12]
                                     [--start 2022-06-01] [--slurm-cpus N] [--timeout 3600] [--workdir DIR]
                                     [--modes N [--modes-until stage1] [--modes-jobs 4] [--modes-heavy 1]]

1. Starts a real Slurm with scripts/slurm_local.sh (its own state dir and ports under the workdir) and always
   stops it at the end: on success, on failure, on Ctrl-C or SIGTERM.
2. Builds the N-coin universe of benchmarks/scale.py (the real BTCUSDT and ETHUSDT plus block-bootstrapped
   synthetic coins; imported, not copied) in a scratch copy of the workflow (tests/sandbox.py), with a small
   target grid (GRID: one window, 4 targets; tuning=demo) and a short span (`env.data.start`, default
   2022-06-01: ~3,200 bars for every coin, the latest synthetic listing is 2022-01).
3. Runs `snakemake --profile profiles/slurm` as a user does (SLURM_FLAGS, the one place for cluster-specific
   flags, is empty), wrapped in `timeout -k 10`, up to `--until` (rule all, or every coin's output of a
   stage).
4. Prints: coins, Snakemake jobs, jobs submitted to Slurm (and sbatch calls, retries included) vs run locally
   (`localrules:`), jobs per minute, wall time, CPU seconds in the jobs' stage functions (the last line of
   each job's log, as benchmarks/demo.py), overhead = wall x cores / those CPU seconds (cores: this
   machine's), the seconds a Slurm job holds its
   slot (slurmctld's log) against the seconds inside it, and the load average seen during the run (sampled
   every 15 s). Figures also go to <workdir>/slurm_slice.json.

Sizing (docs/SCALE.md): every Slurm job starts two Snakemake processes (the batch script's and srun's) that
parse the whole workflow, 11 s of slot time on a quiet 2-core machine and ~55 s under load 17, for ~6 s of
work. The whole workflow of 50 coins (`--until all --slurm-cpus 6`: 1,059 jobs, 703 on Slurm) took 56 minutes
on the quiet 2-core machine; `--until features --slurm-cpus 4` (150 Slurm jobs) is the short run.

`--modes N` first runs the scheduler modes of docs/OPERATIONS.md on an N-coin slice up to `--modes-until`,
each in a fresh copy: sequential `-j 1`, parallel `-j J`, hybrid `-j J --resources heavy=K`. The heavy cap
only binds on model-fitting rules (stage 1 on): up to the features, hybrid is parallel. `--modes-only` skips
the main run.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.demo import job_table  # noqa: E402
from benchmarks.scale import local_rules, prepare, read_wide, table, universe_symbols  # noqa: E402
from tests.ops.helpers import free_port_pair  # noqa: E402
from workflow_scripts import artifacts  # noqa: E402

SCRIPT = ROOT / "scripts" / "slurm_local.sh"
PROFILE = "profiles/slurm"  # relative to the scratch copy, as a user types it in the repository
# No override of profiles/slurm: it already sets `slurm-status-command: squeue` (sacct fails without slurmdbd
# and the plugin would then poll forever). `--slurm-no-account` (tests/ops/test_slurm.py) is not passed:
# plugin 2.8 defines the flag but never reads it; without an account it tries sacct once per run, fails and
# proceeds without `-A` (one warning). Add a flag here if a cluster ever needs one: this is the one place.
SLURM_FLAGS: list[str] = []
WINDOW = 20
# The slice's target grid: one window, the four target types at one std and one barrier threshold (4 targets;
# the targets within a window do not change the plan, only stage 1's work).
GRID = f"""# Written by benchmarks/slurm_slice.py: the Slurm slice's small grid (one window, 4 targets).
name: slice
windows: [{WINDOW}]
types: [high_breakout, high_reversion, low_breakout, low_reversion]
std_thresholds: [1.0]
barrier_thresholds: [0.5]
horizon_multiplier: 1
sigma_min_bars: 24
"""
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+)")
FINISHED = re.compile(r"Finished jobid: \d+ \(Rule: (\w+)\)")


class Stop(BaseException):
    """SIGTERM / SIGHUP: unwind like Ctrl-C so that Slurm is stopped."""


def _stop(signum, _frame):
    raise Stop(f"signal {signal.Signals(signum).name}")


# ---- the cluster -------------------------------------------------------------------------------------------
class LocalSlurm:
    """scripts/slurm_local.sh with a state dir and ports of its own; a context manager that always stops."""

    def __init__(self, state: Path, cpus: int | None):
        self.state = state
        # Like tests/ops/helpers.run_env: no SWINGFLOW_* knob of the caller's shell leaks into the run.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SWINGFLOW_")}
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.env |= {
            "SWINGFLOW_SLURM_DIR": str(state),
            "SWINGFLOW_SLURM_PORT": str(free_port_pair()),
            "SLURM_CONF": str(state / "etc" / "slurm.conf"),
        }
        if cpus:
            self.env["SWINGFLOW_SLURM_CPUS"] = str(cpus)
        self.start_s = 0.0

    def _script(self, *args: str, timeout: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["timeout", "-k", "10", str(timeout), "bash", str(SCRIPT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def __enter__(self) -> LocalSlurm:
        if os.geteuid() != 0:
            sys.exit("a real Slurm needs root (munged, slurmd)")
        link = Path("/etc/slurm/slurm.conf")
        if link.is_symlink():  # one cluster per machine: /etc/slurm holds one link (slurm_local.sh)
            print(f"WARNING: {link} -> {os.readlink(link)}: another local Slurm may be running", flush=True)
        t0 = time.monotonic()
        r = self._script("start", timeout=600)
        self.start_s = time.monotonic() - t0
        if r.returncode != 0:
            self._script("stop", timeout=60)
            sys.exit(f"slurm_local.sh start failed ({r.returncode}):\n{r.stderr[-3000:]}")
        print(f"slurm up in {self.start_s:.1f} s (state {self.state})", flush=True)
        return self

    def __exit__(self, *exc) -> None:
        r = self._script("stop", timeout=60)
        print(f"slurm stopped ({r.returncode}): {r.stderr.strip()[-300:]}", flush=True)

    def node(self) -> str:
        r = subprocess.run(
            ["timeout", "-k", "5", "30", "sinfo", "-h", "-N", "-o", "%N cpus=%c mem=%m %T"],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        return r.stdout.strip()


# ---- one measured run --------------------------------------------------------------------------------------
class LoadSampler(threading.Thread):
    def __init__(self, every_s: float = 15.0):
        super().__init__(daemon=True)
        self.every_s, self.samples, self.done = every_s, [], threading.Event()

    def run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self.done.wait(self.every_s):
                return

    def summary(self) -> dict:
        s = self.samples or [os.getloadavg()[0]]
        return {"load_min": min(s), "load_mean": round(sum(s) / len(s), 2), "load_max": max(s)}


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_logged(cmd: list[str], cwd: Path, env: dict, log: Path, timeout: int) -> dict:
    """`timeout -k 10 <timeout> cmd` with its output in `log`: wall seconds, CPU seconds of the Snakemake
    process and its children (the local jobs; Slurm jobs run under slurmd) and the exit code.
    Snakemake runs directly under `timeout`, so that `-k 10` applies to it: its Slurm status loop ignores
    SIGTERM. On Ctrl-C or SIGTERM here: SIGTERM to `timeout`, which passes it on and kills 10 s later;
    SIGKILL to its process group after 30 s (`timeout` leads a group of its own)."""
    t0, cpu0 = time.monotonic(), children_cpu()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["timeout", "-k", "10", str(timeout), *cmd],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            rc = proc.wait()
        except BaseException:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            raise
    return {
        "rc": 128 - rc
        if rc < 0
        else rc,  # as a shell reports it: `timeout -k` kills its own group, itself too
        "wall_s": round(time.monotonic() - t0, 1),
        "snakemake_cpu_s": round(children_cpu() - cpu0, 1),
    }


def job_cpu(wf: Path) -> dict:
    """CPU seconds inside the jobs, from the last line every finished job writes to its log
    (workflow_scripts/job.py `cpu_line`, as benchmarks/demo.py reads it): the stage functions' CPU and the
    job processes' (start-up included); the wall seconds inside the jobs from the rules' benchmark files."""
    jobs = job_table(wf)
    wall, n = 0.0, 0
    for tsv in (wf / "results" / "benchmarks").rglob("*.tsv"):
        wall, n = wall + float(pd.read_csv(tsv, sep="\t").iloc[-1]["s"]), n + 1
    return {
        "logged_jobs": len(jobs),
        "job_cpu_s": round(float(jobs["function_cpu_s"].sum()), 1) if len(jobs) else 0.0,
        "job_process_cpu_s": round(float(jobs["process_cpu_s"].sum()), 1) if len(jobs) else 0.0,
        "benchmarked_jobs": n,
        "job_wall_s": round(wall, 1),
    }


def count_jobs(text: str, local: set[str]) -> dict:
    finished: dict[str, int] = {}
    for rule in FINISHED.findall(text):
        finished[rule] = finished.get(rule, 0) + 1
    return {
        "jobs": sum(finished.values()),
        "slurm_jobs": sum(c for r, c in finished.items() if r not in local),
        "local_jobs": sum(c for r, c in finished.items() if r in local),
        "sbatch_calls": len(SUBMITTED.findall(text)),  # retries included
        "per_rule": finished,
    }


ALLOCATED = re.compile(r"^\[([^\]]+)\] sched: Allocate JobId=(\d+) ", re.M)
COMPLETED = re.compile(r"^\[([^\]]+)\] _job_complete: JobId=(\d+) WEXITSTATUS", re.M)


def slurm_job_seconds(ctld_log: str, job_ids: list[str]) -> dict:
    """Seconds from allocation to completion of the given Slurm jobs, from slurmctld's log (no accounting
    here): how long a Slurm job holds its slot, against the seconds its benchmark file records inside it."""
    start = {jid: pd.Timestamp(t) for t, jid in ALLOCATED.findall(ctld_log)}
    end = {jid: pd.Timestamp(t) for t, jid in COMPLETED.findall(ctld_log)}
    held = [(end[j] - start[j]).total_seconds() for j in job_ids if j in start and j in end]
    return {
        "slurm_job_s_mean": round(sum(held) / len(held), 1) if held else None,
        "slurm_job_s_max": round(max(held), 1) if held else None,
    }


def snakemake_args(n: int, start: str, targets: list[str], extra: list[str]) -> list[str]:
    overrides = f'overrides=["env.data.start={start}"]'
    config = ["--config", f"universe=scale{n}", "targets=slice", "tuning=demo", overrides]
    # targets first: --config and flags such as --resources take a list of values
    return [sys.executable, "-m", "snakemake", *targets, "--profile", PROFILE, *SLURM_FLAGS, *extra, *config]


# Where a run stops: the whole workflow (rule all), or every coin up to one stage (its outputs per coin).
UNTIL = {
    "all": None,
    "features": "results/features/{s}.parquet",
    "selection": "results/selection/{s}/w{w}.parquet",
    "stage1": "results/stage1/{s}/w{w}",
}


def slice_targets(n: int, until: str) -> list[str]:
    """Snakemake targets of an N-coin run up to `until` ([] = rule all)."""
    pattern = UNTIL[until]
    return [pattern.format(s=s, w=WINDOW) for s in universe_symbols(n)] if pattern else []


@dataclass
class Bench:
    """What every run of one invocation shares: the cluster, the scratch folder, the raw pool, the span."""

    cluster: LocalSlurm
    workdir: Path
    wide: dict
    start: str
    timeout: int

    def run(self, name: str, n: int, until: str, extra: list[str]) -> dict:
        """One fresh scratch copy `<workdir>/<name>` of the N-coin slice, run through Slurm and measured."""
        wf = prepare(self.workdir, n, self.wide, name=name)
        artifacts.write_text(wf / "config" / "targets" / "slice.yaml", GRID)
        targets = slice_targets(n, until)
        cmd = snakemake_args(n, self.start, targets, extra)
        log = self.workdir / f"{name}.log"
        shown = cmd[1:4] + [f"... ({len(targets)} targets)"] + cmd[3 + len(targets) :] if targets else cmd[1:]
        print(f"[{name}] {' '.join(shown)}", flush=True)
        sampler = LoadSampler()
        sampler.start()
        try:
            r = run_logged(cmd, wf, self.cluster.env, log, self.timeout)
        finally:
            sampler.done.set()
        text = log.read_text(errors="replace")
        jobs = count_jobs(text, local_rules(wf / "rules"))
        inside = job_cpu(wf)
        ctld = (self.cluster.state / "log" / "slurmctld.log").read_text(errors="replace")
        held = slurm_job_seconds(ctld, SUBMITTED.findall(text))
        cores = os.cpu_count() or 1
        row = {
            "run": name,
            "coins": n,
            "until": until,
            "flags": " ".join(extra),
            **r,
            **{k: v for k, v in jobs.items() if k != "per_rule"},
            "jobs_per_min": round(jobs["jobs"] / (r["wall_s"] / 60), 2),
            "slurm_jobs_per_min": round(jobs["slurm_jobs"] / (r["wall_s"] / 60), 2),
            **inside,
            "job_s_mean": round(inside["job_wall_s"] / inside["benchmarked_jobs"], 1)
            if inside["benchmarked_jobs"]
            else None,
            **held,
            "cores": cores,
            "overhead": round(r["wall_s"] * cores / inside["job_cpu_s"], 2) if inside["job_cpu_s"] else None,
            **sampler.summary(),
            "per_rule": jobs["per_rule"],
        }
        if r["rc"] != 0:
            tail = "\n".join(text.splitlines()[-60:])
            print(
                f"[{name}] FAILED (exit {r['rc']}{', timed out' if r['rc'] in (124, 137) else ''}):\n{tail}"
            )
            row["error_tail"] = tail
        print(table([row], COLUMNS), flush=True)
        return row


COLUMNS = ["run", "coins", "flags", "rc", "wall_s", "jobs", "slurm_jobs", "local_jobs", "sbatch_calls"]
COLUMNS += ["jobs_per_min", "job_cpu_s", "overhead", "job_s_mean", "slurm_job_s_mean", "load_mean"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coins", type=int, default=50)
    ap.add_argument("--until", choices=list(UNTIL), default="all", help="rule all, or up to a stage")
    ap.add_argument("--start", default="2022-06-01", help="env.data.start: the span's first bar (UTC)")
    ap.add_argument("-j", "--jobs", type=int, default=None, help="override the profile's jobs (default: 12)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds for the main run (timeout -k 10)")
    ap.add_argument("--modes", type=int, default=0, metavar="N", help="first the modes on an N-coin slice")
    ap.add_argument("--modes-until", choices=list(UNTIL), default="stage1")
    ap.add_argument("--modes-jobs", type=int, default=4)
    ap.add_argument("--modes-heavy", type=int, default=1)
    ap.add_argument("--modes-only", action="store_true")
    ap.add_argument("--slurm-cpus", type=int, default=None, help="CPUs the node claims (default: nproc)")
    ap.add_argument("--workdir", type=Path, help="keep the scratch copies, logs and figures here")
    args = ap.parse_args(argv)

    # Ctrl-C raises KeyboardInterrupt even when started in the background by a shell (which ignores SIGINT
    # there); SIGTERM and SIGHUP unwind the same way, so that Slurm is always stopped.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="swingflow-slurm-slice-"))
    workdir.mkdir(parents=True, exist_ok=True)
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.node()}, {os.cpu_count()} CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "load_at_start": os.getloadavg(),
    }
    print(f"slurm slice: {info}; workdir {workdir}", flush=True)
    rows: list[dict] = []
    try:
        wide = read_wide()
        with LocalSlurm(workdir / "slurm", args.slurm_cpus) as cluster:
            info["node"] = cluster.node()
            info["slurm_start_s"] = round(cluster.start_s, 1)
            bench = Bench(cluster, workdir, wide, args.start, args.timeout)
            if args.modes:
                j, k = str(args.modes_jobs), str(args.modes_heavy)
                for name, extra in (
                    ("sequential", ["-j", "1"]),
                    ("parallel", ["-j", j]),
                    ("hybrid", ["-j", j, "--resources", f"heavy={k}"]),
                ):
                    rows.append(bench.run(f"{name}{args.modes}", args.modes, args.modes_until, extra))
            if not args.modes_only:
                extra = ["-j", str(args.jobs)] if args.jobs else []
                rows.append(bench.run(f"slice{args.coins}", args.coins, args.until, extra))
    finally:
        info["load_at_end"] = os.getloadavg()
        artifacts.write_json(workdir / "slurm_slice.json", {"info": info, "runs": rows})
        if rows:
            print(table(rows, COLUMNS))
        print(f"{info}\n(figures in {workdir / 'slurm_slice.json'})")
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if any(r["rc"] != 0 for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
