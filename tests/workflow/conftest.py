"""A private copy of the workflow per test: Snakemake runs in it for real, on real demo bars."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

TINY = ["env=integration-test", "universe=tiny", "targets=small",
        'overrides=["features.lookbacks=[5,21]","features.lags=[]"]']


def copy_workflow(dest: Path, symbols=("BTCUSDT", "ETHUSDT")) -> Path:
    for name in ("Snakefile", "rules", "config", "workflow_scripts", "profiles"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    (dest / "data" / "raw").mkdir(parents=True)
    for s in symbols:
        shutil.copy2(ROOT / "data" / "raw" / f"{s}_1h.parquet", dest / "data" / "raw")
    return dest


def snakemake(workdir: Path, *args: str, config=TINY, timeout=900, check=True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-c2", *args]
    if config:
        cmd += ["--config", *config]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}; empty when nothing is to be done."""
    text = proc.stdout + proc.stderr
    if "Job stats:" not in text:
        return {}
    block = text.split("Job stats:", 1)[1]
    jobs = {}
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m[1] != "total":
            jobs[m[1]] = int(m[2])
    return jobs


@pytest.fixture
def workflow_dir(tmp_path) -> Path:
    return copy_workflow(tmp_path / "wf")
