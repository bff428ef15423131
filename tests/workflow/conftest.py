"""A private copy of the workflow per test: Snakemake runs in it for real, on real demo bars."""

import subprocess
from pathlib import Path

import pytest

from tests.sandbox import copy_workflow, job_stats, run_snakemake

# Tiny data (2025-06 on) has too few rows for 5 CV folds of 200 training rows each: fewer, smaller folds and a
# small tuning budget, so the run goes through tuning, production and the registry in minutes.
TINY = [
    "env=integration-test",
    "universe=tiny",
    "targets=small",
    'overrides=["features.lookbacks=[5,21]","features.lags=[]","tuning.budget.trials.stage2=1","tuning.max_rounds=200",'
    '"tuning.cv.n_folds=3","tuning.cv.min_train_rows=50"]',
]


# Five and a half months of bars, a small tuning budget and gates loose enough that models pass on so few bars
# (their exploratory verdicts may promote in these tests only): for the workflow tests of the registry and the
# torch heads, where the wiring after the gates is what is tested.
LOOSE_REGISTRY_RUN = [
    "env.data.start=2025-12-01",
    "features.lookbacks=[5,21]",
    "features.lags=[]",
    "tuning.budget.trials.stage2=1",
    "tuning.cv.n_folds=3",
    "tuning.cv.min_train_rows=50",
    "gates.min_trades=1",
    "gates.min_dsr=0.0",
    "gates.max_drawdown=1.0",
    "gates.min_net_return=-1.0",
    "registry.promote_gate_profiles=[exploratory]",
]


def snakemake(workdir: Path, *args: str, config=TINY, timeout=900, check=True) -> subprocess.CompletedProcess:
    try:
        return run_snakemake(workdir, *args, config=config, timeout=timeout, check=check)
    except RuntimeError as exc:
        raise AssertionError(str(exc)) from None


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}; empty when nothing is to be done."""
    return job_stats(proc.stdout + proc.stderr)


@pytest.fixture
def workflow_dir(tmp_path) -> Path:
    return copy_workflow(tmp_path / "wf")
