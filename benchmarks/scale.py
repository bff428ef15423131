"""The plan at hundreds of coins: a synthetic universe grown from real bars, the dry run, a no-op rerun and
the per-job cost at two universe sizes (issue 16, docs/SCALE.md).

The universe: the real BTCUSDT and ETHUSDT of ../shared/data/binance-wide-1h/ (the default cross-coin
basket and stage 2's representative coins) plus N-2 synthetic coins `S0001USDT`, ... Synthetic coin i is a
stationary block bootstrap (Politis-Romano, mean block 168 bars, seed 16 + i) of one real coin's bar vectors
(close-to-close log return, open gap, upper and lower wick, volume), listed at a date spread over the span
by a golden-ratio sequence of i, so coin i is the same file in every universe size and the listings cover the
span for any N. Returns are clipped at +-35 % per bar so that ingest's scale check (config/ingest, `stop`)
never fires on a resampling artefact; each coin is checked with the ingest's own scale check. Files go into a
scratch copy of the workflow (tests/sandbox.py) as data/raw/<SYMBOL>_1h.parquet, written at run time, never
committed, with a universe config `scale<N>` beside them.

Parts (each prints a table and writes it to <workdir>/<part>.json; the figures are in docs/SCALE.md):

    python benchmarks/scale.py plan  [--sizes 50 100 200 400]   # dry run: time, peak RSS, jobs per coin,
                                     [--grids default small]    # cluster / local jobs; --cprofile: a profile
                                     [--replans 2]              # the same dry run again: re-plan time
    python benchmarks/scale.py slurm [--sizes 400]              # the same dry run through profiles/slurm
    python benchmarks/scale.py noop  [--sizes 50 400]           # touch every output (recording metadata),
                                                                # then time the dry run of the finished plan
    python benchmarks/scale.py jobs  [--sizes 50 400]           # per-job disk and peak RSS of the features,
                                                                # selection and stage-1 jobs of two coins
    python benchmarks/scale.py registry [--sizes 5 25 50 400]   # register_models, dashboard, champions

`--workdir DIR` keeps the scratch copies and the figures (default: a temporary folder removed at the end).
`--grids` names config/targets options: the windows set the jobs per coin, the targets within a window do not
(a stage-1 job loops over its window's targets).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sandbox import copy_workflow, job_stats  # noqa: E402
from workflow_scripts import artifacts  # noqa: E402
from workflow_scripts.config.schema import config_group  # noqa: E402
from workflow_scripts.data import quality  # noqa: E402
from workflow_scripts.job import CPU_LINE  # noqa: E402

WIDE = ROOT.parent / "shared" / "data" / "binance-wide-1h"
REAL = ("BTCUSDT", "ETHUSDT")  # the basket and the representatives: real series, listed first
BLOCK_BARS = 168  # mean block of the stationary bootstrap: a week of hourly bars keeps volatility clusters
MAX_RETURN = 0.35  # |log return| per bar: below ingest.scale.min_factor's log(1.5) = 0.405
LAST_LISTING = 0.85  # the latest listing, as a fraction of the span: >= ~6,800 bars for the last coin
GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
SEED = 16
# The plan's env span covers every synthetic listing (2017-08 .. 2022-10): rules/common.smk plans only the
# coins with enough bars in the span, and the env's own span (env.data.start) may begin after the bars end.
PLAN_CONFIG = ['overrides=["env.data.start=2017-01-01"]']


# ---- the synthetic universe --------------------------------------------------------------------------------
def synthetic_symbol(i: int) -> str:
    return f"S{i:04d}USDT"


def universe_symbols(n: int) -> list[str]:
    """The N coins of a universe: the real basket, then synthetic coins 1..N-2 (a prefix of any larger N)."""
    return list(REAL[: min(n, len(REAL))]) + [synthetic_symbol(i) for i in range(1, n - len(REAL) + 1)]


def listing_fraction(i: int) -> float:
    """Where in the span coin i lists (0 = the first bar): a golden-ratio sequence, spread for any N."""
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
        {
            "timestamp": timestamps,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rows[:, 4],
        }
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
    for symbol in universe_symbols(n):
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


def prepare(workdir: Path, n: int, wide: dict[str, pd.DataFrame], name: str | None = None) -> Path:
    """A scratch workflow copy `workdir/w<N>` whose data/raw links to the N coins of the shared raw pool and
    whose config has the universe option `scale<N>`."""
    pool = workdir / "raw"
    facts = write_universe(pool, n, wide)
    wf = workdir / (name or f"w{n}")
    if not wf.exists():
        copy_workflow(wf, symbols=())
        for s in universe_symbols(n):
            (wf / "data" / "raw" / f"{s}_1h.parquet").symlink_to(pool / f"{s}_1h.parquet")
        symbols = ", ".join(universe_symbols(n))
        artifacts.write_text(
            wf / "config" / "universe" / f"scale{n}.yaml", f"name: scale{n}\nsymbols: [{symbols}]\n"
        )
    print(f"universe {n}: {facts['bars']:,} bars, span {facts['span'][0]} .. {facts['span'][1]}", flush=True)
    return wf


# ---- running Snakemake, measured ---------------------------------------------------------------------------
def timed(cmd: list[str], cwd: Path, timeout: float = 3600) -> dict:
    """Run `cmd` under /usr/bin/time: wall and CPU seconds (user + system) and peak RSS of the process (MB),
    with its output. CPU seconds are the figure to compare on a shared machine (wall grows with the load)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as fh:
        proc = subprocess.run(
            ["/usr/bin/time", "-o", fh.name, "-f", "%e %U %S %M", *cmd],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        wall, user, system, rss_kb = fh.read().split()[-4:]
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    return {
        "wall_s": float(wall),
        "cpu_s": float(user) + float(system),
        "rss_mb": int(rss_kb) / 1024,
        "out": proc.stdout + proc.stderr,
    }


def snakemake(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", *args]


LOCALRULES = re.compile(
    r"^localrules:[ \t]*((?:\w+[ \t]*,[ \t]*)*\w*)[ \t]*\n((?:[ \t]+\w+,?[ \t]*\n)*)", re.M
)


def local_rules(rules_dir: Path) -> set[str]:
    """The rules that rules/*.smk declare `localrules:` (one line, or a name per line as snakefmt writes it):
    in a cluster run they run in the Snakemake process's host. A dry run does not say which jobs are local.
    Raises on a declared name that is no rule (Snakemake only warns)."""
    names: set[str] = set()
    rules: set[str] = set()
    for smk in sorted(Path(rules_dir).glob("*.smk")):
        text = smk.read_text(encoding="utf-8")
        rules |= set(re.findall(r"^rule (\w+):", text, flags=re.M))
        for inline, block in LOCALRULES.findall(text):
            names |= set(re.findall(r"\w+", inline + " " + block))
    unknown = sorted(names - rules)
    if unknown:
        raise ValueError(f"{rules_dir}: localrules names no rule: {unknown}")
    return names | {"all"}  # a rule without a command is always local


def plan(wf: Path, n: int, config: list[str], profile: str | None = None, cprofile: bool = False) -> dict:
    """`snakemake -n` of the whole workflow (rule all) for the N-coin universe: time, peak RSS, jobs.
    `--quiet rules` keeps Snakemake from printing 50,000 job blocks (the job table is still printed)."""
    args = ["-n", "-c2", "--quiet", "rules", "--config", f"universe=scale{n}", *config]
    if profile:
        args = ["--profile", profile, *args]
    cmd = snakemake(*args)
    if cprofile:  # the same dry run in-process under cProfile (4-5 times slower), then its top functions
        cmd = [sys.executable, "-m", "cProfile", "-o", str(wf / "plan.prof"), "-m", "snakemake", *args]
    r = timed(cmd, wf)
    if cprofile:
        stats = pstats.Stats(str(wf / "plan.prof"))
        stats.sort_stats("cumulative").print_stats(40)
    out = r.pop("out")
    jobs = job_stats(out)
    if not jobs and "Nothing to be done" not in out:
        raise RuntimeError(f"{n} coins: no job table in the dry run's output:\n{out[-3000:]}")
    return r | {"coins": n, "jobs": sum(jobs.values()), "per_rule": jobs}


def submitted(per_rule: dict[str, int], local: set[str]) -> dict:
    """Cluster jobs of a plan: every job of a rule that is not local (no rule of the workflow is grouped)."""
    cluster = {r: c for r, c in per_rule.items() if r not in local}
    return {
        "cluster": sum(cluster.values()),
        "local": sum(c for r, c in per_rule.items() if r in local),
        "cluster_rules": cluster,
    }


# A Snakemake run with --touch that first creates each job's missing outputs (a folder for directory()),
# without the touch executor's 0.1 s sleep per job: every output exists in DAG order and Snakemake records its
# metadata (params, code, inputs) as after a real run. The benchmark's way to a finished plan of 400 coins.
TOUCH_DRIVER = """
import sys
from pathlib import Path
from snakemake.executors import touch
from snakemake.io import is_flagged

def run_job(self, job, _run=touch.Executor.run_job):
    for f in job.output:
        p = Path(f)
        if is_flagged(f, "directory"):
            p.mkdir(parents=True, exist_ok=True)
        elif not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
    _run(self, job)

touch.Executor.SLEEPING_TIME = 0
touch.Executor.run_job = run_job
from snakemake.cli import main
sys.argv = ["snakemake", *sys.argv[1:]]
main()
"""


def finish_by_touch(wf: Path, n: int, config: list[str]) -> dict:
    """Every output of the plan created and recorded (TOUCH_DRIVER): the state after a finished run."""
    args = ["--touch", "-c2", "--quiet", "rules", "--config", f"universe=scale{n}", *config]
    r = timed([sys.executable, "-c", TOUCH_DRIVER, *args], wf, timeout=4 * 3600)
    r.pop("out")
    return r


def noop(wf: Path, n: int, config: list[str]) -> dict:
    """The dry run of a finished plan (nothing touched since): what every rerun pays before its first job."""
    r = plan(wf, n, config)
    if r["jobs"]:
        raise RuntimeError(f"{n} coins: the finished plan still has jobs to run: {r['per_rule']}")
    return r


# ---- parts -------------------------------------------------------------------------------------------------
def table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        return f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def save(workdir: Path, part: str, rows) -> None:
    artifacts.write_json(workdir / f"{part}.json", rows)
    print(f"(figures in {workdir / f'{part}.json'})")


def part_plan(
    workdir: Path, sizes: list[int], wide, grids: list[str], cprofile: bool = False, replans: int = 0
) -> list[dict]:
    """The first dry run of each size and grid in a new copy (`wall_s`, `cpu_s`), then `replans` more of the
    same plan in the same copy (`replan_wall_s`, `replan_cpu_s`: their medians): a re-plan finds the caches
    of the first (Snakemake's file-existence cache of a dry run, the raw bar counts)."""
    rows = []
    for n in sizes:
        wf = prepare(workdir, n, wide)
        local = local_rules(wf / "rules")
        for grid in grids:
            config = [f"targets={grid}", *PLAN_CONFIG]
            r = plan(wf, n, config, cprofile=cprofile)
            again = [plan(wf, n, config) for _ in range(replans)]
            if any(a["per_rule"] != r["per_rule"] for a in again):
                raise RuntimeError(f"{n} coins, grid {grid}: a re-plan planned other jobs than the first")
            if again:
                r |= {
                    "replan_wall_s": statistics.median(a["wall_s"] for a in again),
                    "replan_cpu_s": statistics.median(a["cpu_s"] for a in again),
                    "replans": [{k: a[k] for k in ("wall_s", "cpu_s", "rss_mb")} for a in again],
                }
            sub = submitted(r["per_rule"], local)
            rows.append(
                {k: v for k, v in r.items() if k != "per_rule"}
                | {
                    "grid": grid,
                    "jobs_per_coin": round(r["jobs"] / n, 1),
                    "ms_per_job": round(1000 * r["cpu_s"] / r["jobs"], 2),
                    "cluster_jobs": sub["cluster"],
                    "local_jobs": sub["local"],
                    "per_rule": r["per_rule"],
                }
            )
            print(table(rows[-1:], PLAN_COLUMNS), flush=True)
    by_grid = {g: [r for r in rows if r["grid"] == g] for g in grids}
    for g, rs in by_grid.items():
        if len(rs) > 1:  # the exact jobs one more coin adds: the slope between the two largest sizes
            a, b = rs[-2], rs[-1]
            print(f"grid {g}: {(b['jobs'] - a['jobs']) / (b['coins'] - a['coins']):.1f} jobs per added coin")
    print(table(rows, PLAN_COLUMNS))
    return rows


PLAN_COLUMNS = ["coins", "grid", "jobs", "jobs_per_coin", "wall_s", "cpu_s", "ms_per_job", "rss_mb"]
PLAN_COLUMNS += ["replan_wall_s", "replan_cpu_s", "cluster_jobs", "local_jobs"]


def part_slurm(workdir: Path, sizes: list[int], wide, grids: list[str]) -> list[dict]:
    """The plan through profiles/slurm: cluster jobs (what sbatch would get) and local jobs."""
    rows = []
    for n in sizes:
        wf = prepare(workdir, n, wide, name=f"slurm{n}")  # never touched by `noop`
        local = local_rules(wf / "rules")
        for grid in grids:
            r = plan(wf, n, [f"targets={grid}", *PLAN_CONFIG], profile="profiles/slurm")
            sub = submitted(r["per_rule"], local)
            rows.append(
                {k: v for k, v in r.items() if k != "per_rule"}
                | {"grid": grid, "cluster_jobs": sub["cluster"], "local_jobs": sub["local"]}
                | {"cluster_per_coin": round(sub["cluster"] / n, 1), "cluster_rules": sub["cluster_rules"]}
            )
            print(table(rows[-1:], SLURM_COLUMNS), flush=True)
    print(table(rows, SLURM_COLUMNS))
    return rows


SLURM_COLUMNS = ["coins", "grid", "jobs", "cluster_jobs", "cluster_per_coin", "local_jobs", "wall_s", "cpu_s"]


def part_noop(workdir: Path, sizes: list[int], wide, grids: list[str]) -> list[dict]:
    rows = []
    for n in sizes:
        wf = prepare(workdir, n, wide, name=f"noop{n}")  # its outputs are all created: a copy of its own
        for grid in grids:
            config = [f"targets={grid}", *PLAN_CONFIG]
            first = plan(wf, n, config)
            touched = finish_by_touch(wf, n, config)
            r = noop(wf, n, config)
            rows.append(
                {"coins": n, "grid": grid, "jobs": first["jobs"], "touch_wall_s": touched["wall_s"]}
                | {k: r[k] for k in ("wall_s", "cpu_s", "rss_mb")}
                | {"ms_per_job": round(1000 * r["cpu_s"] / first["jobs"], 2)}
            )
            print(table(rows[-1:], NOOP_COLUMNS), flush=True)
    print(table(rows, NOOP_COLUMNS))
    return rows


NOOP_COLUMNS = ["coins", "grid", "jobs", "touch_wall_s", "wall_s", "cpu_s", "ms_per_job", "rss_mb"]


# ---- per-job cost at two universe sizes --------------------------------------------------------------------
SLICE = ("S0001USDT", "S0002USDT")  # listed 2018-02 and 2020-11: both cover the slice's span
SLICE_WINDOWS = (5, 20)  # config/targets small
SLICE_CONFIG = ["targets=small", 'overrides=["env.data.start=2022-01-01"]']  # ~6,800 bars per coin
# rule -> (benchmark file, outputs) per coin and window ({c}: coin, {w}: window)
SLICE_JOBS = {
    "build_features": ("features/base/{c}.tsv", ["results/features/base/{c}.parquet"]),
    "add_cross_coin_features": ("features/cross/{c}.tsv", ["results/features/{c}.parquet"]),
    "screen_features": ("screening/{c}.tsv", ["results/screening/{c}"]),
    "select_features": ("selection/{c}/w{w}.tsv", ["results/selection/{c}/w{w}.parquet"]),
    "train_stage1": ("stage1/{c}/w{w}.tsv", ["results/stage1/{c}/w{w}"]),
}


def disk_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def slice_costs(wf: Path) -> list[dict]:
    """Per job of the slice: wall seconds and Snakemake's sampled peak RSS (the job's benchmark file), the job
    process's exact peak RSS (ru_maxrss, the last line of its log: workflow_scripts/job.py `cpu_line`; its log
    path mirrors the benchmark file's), output MB."""
    rows = []
    for rule, (bench, outputs) in SLICE_JOBS.items():
        for c in SLICE:
            for w in SLICE_WINDOWS if "{w}" in bench else (None,):
                tsv = pd.read_csv(wf / "results" / "benchmarks" / bench.format(c=c, w=w), sep="\t")
                log = (wf / "logs" / bench.format(c=c, w=w)).with_suffix(".log").read_text(errors="replace")
                rows.append(
                    {
                        "rule": rule,
                        "job": c if w is None else f"{c}/w{w}",
                        "s": float(tsv["s"].iloc[-1]),
                        "max_rss_mb": float(tsv["max_rss"].iloc[-1]),
                        "peak_rss_mb": float(CPU_LINE.findall(log)[-1][3]),
                        "disk_mb": sum(disk_mb(wf / o.format(c=c, w=w)) for o in outputs),
                    }
                )
    return rows


def part_jobs(workdir: Path, sizes: list[int], wide, grids: list[str]) -> list[dict]:
    """The features, selection and stage-1 jobs of two coins, run for real in an N-coin universe (the small
    grid, 2022 on), for each N: peak memory and disk per job should not depend on N."""
    by_size = {}
    for n in sizes:
        wf = prepare(workdir, n, wide, name=f"jobs{n}")
        targets = [f"results/stage1/{c}/w{w}" for c in SLICE for w in SLICE_WINDOWS]
        r = timed(snakemake("-c2", *targets, "--config", f"universe=scale{n}", *SLICE_CONFIG), wf, 4 * 3600)
        print(f"{n} coins: the slice ran in {r['wall_s']:.0f} s", flush=True)
        by_size[n] = slice_costs(wf)
    rows = []
    for i, base in enumerate(by_size[sizes[0]]):
        row = {"rule": base["rule"], "job": base["job"]}
        for n in sizes:
            job = by_size[n][i]
            row |= {
                f"peak_rss_mb_{n}": job["peak_rss_mb"],
                f"rss_mb_{n}": job["max_rss_mb"],
                f"disk_mb_{n}": round(job["disk_mb"], 2),
                f"s_{n}": job["s"],
            }
        a, b = by_size[sizes[0]][i], by_size[sizes[-1]][i]
        row["peak_rss_ratio"] = round(b["peak_rss_mb"] / a["peak_rss_mb"], 3)
        row["rss_ratio"] = round(b["max_rss_mb"] / a["max_rss_mb"], 3) if a["max_rss_mb"] else None
        row["disk_ratio"] = round(b["disk_mb"] / a["disk_mb"], 3) if a["disk_mb"] else None
        rows.append(row)
    print(table(rows, list(rows[0])))
    return rows


# ---- the registry and the CLI at 400 coins x 6 windows x 2 sides -------------------------------------------
GRADE_CYCLE = ["A", "B+", "B", "A-", "C", "B-", "A+", "D", "F", "S"]


def base_folder(root: Path) -> Path:
    """One real production folder: tests/registry/conftest.py's WorkflowLike (the workflow's own features,
    targets, splits and a LightGBM head trained on real BTCUSDT bars, evaluation files as the workflow writes
    them)."""
    from tests.registry.conftest import WorkflowLike, workflow_bars

    return WorkflowLike(root, workflow_bars()).production("BTCUSDT", 5, "high")


def clone_folder(base: Path, dest: Path, symbol: str, window: int, side: str, i: int) -> Path:
    """`base` as the production folder of (symbol, window, side): its identity (config.json, VIN, grade,
    score, universe) and its validation evidence (another Sharpe) rewritten, sha256.txt recomputed."""
    from tests.registry.conftest import evidence_document
    from workflow_scripts.evaluation.evidence import EVIDENCE_FILE
    from workflow_scripts.evaluation.vin import encode_vin, vin_suffix
    from workflow_scripts.models.folder import write_sha256

    shutil.copytree(base, dest)
    cfg = artifacts.read_json(dest / "config.json")
    kind, theta = "breakout", 0.5
    cfg |= {"symbol": symbol, "window": window, "side": side, "target": f"{side}_{kind}_k1.0_th{theta}"}
    artifacts.write_json(dest / "config.json", cfg)
    grade = GRADE_CYCLE[i % len(GRADE_CYCLE)]
    metrics = artifacts.read_json(dest / "metrics.json")
    metrics |= {
        "vin": encode_vin(
            {
                "type": "LGBM",
                "grade": grade,
                "arch": {"num_leaves": 7},
                "opt": {"learning_rate": 0.1, "num_iterations": 60},
                "env": {"side": side, "kind": kind, "k": 1.0, "theta": theta, "window": window},
                "date": "20260516",
                "suffix": vin_suffix({"symbol": symbol, "window": window, "side": side}),
            }
        ),
        "score": round(0.3 + 0.4 * ((i * 0.618) % 1.0), 4),
        "grade": {"grade": grade},
    }
    artifacts.write_json(dest / "metrics.json", metrics)
    feats = artifacts.read_json(dest / "features.json")
    artifacts.write_json(dest / "features.json", feats | {"universe": sorted({symbol, *REAL})})
    doc = artifacts.read_json(dest / EVIDENCE_FILE)
    sharpe = 3.0 * ((i * 0.377) % 1.0) - 0.5
    fresh = evidence_document(sharpe, doc["gate"], bars=len(doc["returns"]), seed=f"{symbol}/{window}/{side}")
    artifacts.write_json(
        dest / EVIDENCE_FILE,
        doc | {"returns": fresh["returns"]},  # the same validation bars and trades, other returns
    )
    write_sha256(dest)
    return dest


def production_folders(results: Path, base: Path, n: int, windows: list[int], sides: list[str]) -> list[Path]:
    out, i = [], 0
    for symbol in universe_symbols(n):
        for w in windows:
            for side in sides:
                dest = results / "production" / symbol / f"w{w}" / side
                out.append(dest if dest.exists() else clone_folder(base, dest, symbol, w, side, i))
                i += 1
    return out


def seconds(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def cli_seconds(argv: list[str]) -> tuple[float, int]:
    """`swingflow ARGV` in a fresh process (as a user types it): wall seconds and lines printed."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "workflow_scripts.ops.cli", *argv], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(f"swingflow {' '.join(argv)} failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - started, len(proc.stdout.splitlines())


@contextlib.contextmanager
def lock_held_seconds(out: list[float]):
    """Benchmark only: the seconds each store.transaction holds the registry's lock, appended to `out`
    (register_run copies the new folders before taking it; other jobs wait on the lock meanwhile)."""
    from workflow_scripts.registry import store

    orig = store.transaction

    @contextlib.contextmanager
    def timed_transaction(registry_dir):
        started = time.perf_counter()
        try:
            with orig(registry_dir):
                yield
        finally:
            out.append(time.perf_counter() - started)

    store.transaction = timed_transaction
    try:
        yield
    finally:
        store.transaction = orig


def part_registry(workdir: Path, sizes: list[int], wide, grids: list[str]) -> list[dict]:
    """register_models (registry/runs.register_run + decision_record, as the rule runs them) on N coins x 6
    windows x 2 sides of production folders, then a rerun with nothing new, then the dashboard frame and
    `swingflow champions` (with and without the summary options)."""
    from workflow_scripts.registry import dashboard
    from workflow_scripts.registry.runs import SymbolData, decision_record, register_run

    windows = config_group("targets")["windows"]
    sides = ["high", "low"]
    spec = config_group("registry")
    base = base_folder(workdir / "base")
    rows = []
    for n in sizes:
        root = workdir / f"registry{n}"
        results = root / "results"
        folders, built = seconds(production_folders, results, base, n, windows, sides)
        artifacts.write_json(
            results / "config" / "resolved.json",
            {"universe": {"symbols": universe_symbols(n)}, "targets": config_group("targets")},
        )
        reg_dir = root / "registry"
        shutil.rmtree(reg_dir, ignore_errors=True)
        data = {s: SymbolData(features=results / "features" / f"{s}.parquet") for s in universe_symbols(n)}
        locked: list[float] = []
        with lock_held_seconds(locked):
            cpu = time.process_time()
            (status, _), first = seconds(register_run, reg_dir, folders, data, spec)
            cpu = time.process_time() - cpu
        _, record = seconds(decision_record, reg_dir, folders, spec)
        _, again = seconds(register_run, reg_dir, folders, data, spec)
        snap, snap_s = seconds(dashboard.snapshot, reg_dir, results)
        row = {
            "coins": n,
            "folders": len(folders),
            "build_s": round(built, 1),
            "register_s": round(first, 1),
            "register_cpu_s": round(cpu, 1),
            "lock_held_s": round(sum(locked), 1),
            "decisions_s": round(record, 1),
            "rerun_s": round(again, 1),
            "champions": len(snap["champions"]),
            "snapshot_s": round(snap_s, 2),
            "index_mb": round((reg_dir / "index.json").stat().st_size / 2**20, 1),
        }
        for name, argv in {
            "dashboard": ["dashboard", "--once", "--results", str(results)],
            "champions": ["champions"],
        }.items():
            row[f"{name}_s"], row[f"{name}_lines"] = cli_seconds(["--registry", str(reg_dir), *argv])
        rows.append(row)
        print(table(rows[-1:], list(row)), flush=True)
    print(table(rows, list(rows[-1])))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["plan", "slurm", "noop", "jobs", "registry"])
    ap.add_argument("--sizes", type=int, nargs="+", help="universe sizes (default per part)")
    ap.add_argument("--grids", nargs="+", default=["default"], help="config/targets options for the plan")
    ap.add_argument("--workdir", type=Path, help="keep scratch copies here (default: a temporary folder)")
    ap.add_argument("--cprofile", action="store_true", help="plan: run each dry run under cProfile")
    ap.add_argument("--replans", type=int, default=0, help="plan: dry runs again in the same copy (median)")
    args = ap.parse_args(argv)
    defaults = {
        "plan": [50, 100, 200, 400],
        "slurm": [400],
        "noop": [50, 400],
        "jobs": [50, 400],
        "registry": [5, 25, 50, 400],
    }
    sizes = args.sizes or defaults[args.part]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="swingflow-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"{args.part}: sizes {sizes}, grids {args.grids}, workdir {workdir}; load average {os.getloadavg()}"
    )
    try:
        wide = read_wide()
        part = {
            "plan": part_plan,
            "slurm": part_slurm,
            "noop": part_noop,
            "jobs": part_jobs,
            "registry": part_registry,
        }[args.part]
        extra = {"cprofile": args.cprofile, "replans": args.replans} if args.part == "plan" else {}
        rows = part(workdir, sizes, wide, args.grids, **extra)
        save(workdir, args.part, rows)
    finally:
        print(f"load average at the end {os.getloadavg()}")
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
