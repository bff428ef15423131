"""env=production refuses to start from a checkout it could not be rebuilt from: uncommitted code or config,
raw data not tracked by DVC (or changed since `dvc add`). A temporary git repository holds a copy of the
workflow."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.ops.helpers import ROOT, run_env, run_snakemake
from tests.sandbox import copy_workflow
from workflow_scripts.ops import provenance

RAW = ["data/raw/BTCUSDT_1h.parquet", "data/raw/ETHUSDT_1h.parquet"]
PRODUCTION = ["--config", "env=production", "universe=tiny", "targets=small"]


def sh(repo: Path, *cmd: str) -> str:
    r = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False, timeout=120, env=run_env())
    assert r.returncode == 0, f"{cmd}: {r.stdout}{r.stderr}"
    return r.stdout


def git(repo: Path, *args: str) -> str:
    return sh(
        repo,
        "git",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.invalid",
        "-c",
        "commit.gpgsign=false",
        *args,
    )


def dvc(repo: Path, *args: str) -> str:
    return sh(repo, str(Path(sys.executable).parent / "dvc"), *args)


@pytest.fixture()
def repo(tmp_path) -> Path:
    wf = copy_workflow(tmp_path / "repo")
    shutil.copy(ROOT / ".gitignore", wf / ".gitignore")
    git(wf, "init", "-q")
    git(wf, "add", "-A")
    git(wf, "commit", "-q", "-m", "workflow")
    return wf


def put_raw_data_under_dvc(repo: Path) -> None:
    dvc(repo, "init", "-q")
    git(repo, "rm", "-q", "--cached", *RAW)
    dvc(repo, "add", "-q", *RAW)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "raw data under DVC")


def plan(repo: Path):
    """A real run (the check runs at its start, not for -n) of the cheapest job, forced so every call has a
    job to start: the resolved config."""
    r = run_snakemake(["-c1", "-f", *PRODUCTION, "--", "results/config/resolved.yaml"], cwd=repo, timeout=180)
    r.stderr = r.stdout + r.stderr  # Snakemake prints a start-up error on stdout
    return r


def test_uncommitted_code_and_config_are_listed(repo):
    assert provenance.uncommitted_changes(repo) == []
    with open(repo / "rules" / "data.smk", "a") as fh:
        fh.write("\n# an edit\n")
    (repo / "config" / "env" / "mine.yaml").write_text("name: mine\n")
    (repo / "notes.txt").write_text("not part of the workflow\n")
    assert provenance.uncommitted_changes(repo) == [" M rules/data.smk", "?? config/env/mine.yaml"]


def test_a_folder_that_is_not_a_git_checkout_is_refused(tmp_path):
    with pytest.raises(provenance.ProvenanceError, match="not a git checkout"):
        provenance.require_reproducible(tmp_path, [])


def test_production_refuses_raw_data_that_is_not_under_dvc(repo):
    r = plan(repo)
    assert r.returncode != 0
    assert "this production run is refused" in r.stderr
    for f in RAW:
        assert f"{repo / f}: not tracked by DVC" in r.stderr
    assert not (repo / "results").exists()


@pytest.mark.slow
def test_production_starts_from_a_clean_commit_with_dvc_tracked_data_and_refuses_any_drift(repo):
    put_raw_data_under_dvc(repo)
    ok = plan(repo)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "write_resolved_config" in ok.stdout + ok.stderr  # planned, i.e. it started

    # an uncommitted edit to a rule: refused, naming the file
    smk = repo / "rules" / "data.smk"
    original = smk.read_text()
    smk.write_text(original + "\n# tweak\n")
    r = plan(repo)
    assert r.returncode != 0 and "uncommitted change: M rules/data.smk" in r.stderr
    smk.write_text(original)

    # raw bars changed after `dvc add`: refused, naming the file and the recorded hash
    bars = pd.read_parquet(repo / RAW[0])
    bars.iloc[:-1].to_parquet(repo / RAW[0])
    r = plan(repo)
    assert r.returncode != 0
    assert f"{repo / RAW[0]}: content differs from BTCUSDT_1h.parquet.dvc" in r.stderr
    assert "ETHUSDT" not in r.stderr.split("refused")[-1]  # only the changed file is named

    # a non-production env never checks
    dev = run_snakemake(
        ["-n", "--config", "env=local-dev", "universe=tiny", "targets=small"], cwd=repo, timeout=180
    )
    assert dev.returncode == 0, dev.stderr[-3000:]
