"""Planned = necessary (issue 15): on a copy of the finished tiny run, each change of the change table
(tests/change_table.py, docs/ARCHITECTURE.md "Reruns") plans exactly its expected jobs, rule and
wildcards.

The expected jobs of a row are chosen by the row's predicate from every job of the changed workflow
(`snakemake -n --forceall`); the planned ones are what `snakemake -n` plans. A coin is added for real (its
chain runs) so that removing it can be planned too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.change_table import Change, Job, changes, job_of, planned_and_expected
from tests.reliability.conftest import RUN, SYMBOLS, jobs_of_dry_run, output_text, smk
from tests.sandbox import ROOT

pytestmark = pytest.mark.slow

NEW_SYMBOL, NEW_WINDOW = "SOLUSDT", 10
WINDOWS = (5, 20)  # targets=small
GROUPS = dict(item.split("=", 1) for item in RUN[:3])
OVERRIDES = json.loads(RUN[3].split("=", 1)[1])
TABLE = changes(SYMBOLS, WINDOWS, NEW_SYMBOL, NEW_WINDOW)
ADD, REMOVE = (next(c for c in TABLE if c.name.startswith(k)) for k in ("add a coin", "remove a coin"))


@pytest.fixture(scope="module")
def finished(clean_run, tmp_path_factory) -> Path:
    """A private copy of the finished tiny run, with the new coin's raw bars beside the others."""
    wd = tmp_path_factory.mktemp("change-plans") / "wf"
    shutil.copytree(clean_run, wd, symlinks=True)
    shutil.copy2(ROOT / "data" / "raw" / f"{NEW_SYMBOL}_1h.parquet", wd / "data" / "raw")
    return wd


def plan(wd: Path, config: list[str], *args: str) -> set[Job]:
    proc = smk(wd, "-n", *args, config=config, timeout=600)
    assert proc.returncode == 0, output_text(proc)[-3000:]
    return {job_of(rule, outputs) for rule, outputs in jobs_of_dry_run(output_text(proc)) if rule != "all"}


@pytest.fixture(scope="module")
def everything(finished) -> set[Job]:
    """Every job of the unchanged workflow: the job list of a change that adds or removes none."""
    return plan(finished, RUN, "--forceall")


def check(wd: Path, change: Change, run_overrides, every: set[Job]) -> None:
    planned, expected = planned_and_expected(
        wd, change, lambda config, *args: plan(wd, config, *args), run_overrides, GROUPS, every
    )
    assert expected, f"{change.name}: the row expects no job"
    extra, missing = sorted(planned - expected, key=str), sorted(expected - planned, key=str)
    assert not extra and not missing, (
        f"{change.name}: planned but not expected {extra}; expected, not planned {missing}"
    )


@pytest.mark.parametrize("change", [c for c in TABLE if c is not REMOVE], ids=lambda c: c.name)
def test_a_change_plans_exactly_its_jobs(finished, everything, change):
    check(finished, change, OVERRIDES, everything)


def test_removing_a_coin_after_a_run_with_it_plans_only_the_aggregates(finished, everything):
    with_coin = ADD.config(OVERRIDES, GROUPS)
    proc = smk(finished, config=with_coin, timeout=1800)
    assert proc.returncode == 0, output_text(proc)[-4000:]
    assert plan(finished, with_coin) == set()  # the new coin's run is complete
    check(finished, REMOVE, OVERRIDES, everything)
