"""A private copy of the workflow to run Snakemake in: for tests and benchmarks that must not touch
results/."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW_FILES = ("Snakefile", "rules", "config", "workflow_scripts", "profiles", "envs")


def copy_workflow(dest: Path, symbols=("BTCUSDT", "ETHUSDT")) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    (dest / "data" / "raw").mkdir(parents=True)
    for s in symbols:
        shutil.copy2(ROOT / "data" / "raw" / f"{s}_1h.parquet", dest / "data" / "raw")
    return dest


def snakemake_cmd(*args: str, config: list[str] | None = None, cores: int = 2) -> list[str]:
    cmd = [sys.executable, "-m", "snakemake", f"-c{cores}", *args]
    if config:
        cmd += ["--config", *config]
    return cmd


def run_snakemake(
    workdir: Path, *args: str, config: list[str] | None = None, timeout: float = 900, check: bool = True
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        snakemake_cmd(*args, config=config), cwd=workdir, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def job_stats(text: str) -> dict[str, int]:
    """The first 'Job stats' table of a Snakemake output as {rule: count} ({} when nothing is to be done)."""
    if "Job stats:" not in text:
        return {}
    jobs = {}
    for line in text.split("Job stats:", 1)[1].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m[1] != "total":
            jobs[m[1]] = int(m[2])
    return jobs
