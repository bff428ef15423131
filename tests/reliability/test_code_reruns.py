"""Code changes invalidate (issue 15): on a copy of the finished tiny run, an edit to a module that rules run
replans exactly those rules and what depends on them; an untouched run plans nothing.

The rule params carry a digest of the code each job runs (workflow_scripts/ops/code_digest.py), and Snakemake
reruns a job whose recorded params differ (rerun trigger `params`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.change_table import UPSTREAM_OF_FEATURES
from tests.reliability.conftest import RUN, jobs_of_dry_run, output_text, smk

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(clean_run, tmp_path_factory) -> Path:
    """A private copy of the finished tiny run (outputs, Snakemake's records and the workflow code)."""
    wd = tmp_path_factory.mktemp("code-reruns") / "wf"
    shutil.copytree(clean_run, wd, symlinks=True)
    return wd


def planned_rules(wd: Path, *args: str) -> dict[str, int]:
    proc = smk(wd, "-n", *args, config=RUN, timeout=600)
    assert proc.returncode == 0, output_text(proc)[-3000:]
    counts: dict[str, int] = {}
    for rule, _ in jobs_of_dry_run(output_text(proc)):
        if rule != "all":
            counts[rule] = counts.get(rule, 0) + 1
    return counts


def edited(path: Path, line: str):
    """Append `line` to a module for the duration of a with-block."""

    class _Edit:
        def __enter__(self):
            self.original = path.read_text()
            path.write_text(self.original + line)

        def __exit__(self, *exc):
            path.write_text(self.original)

    return _Edit()


def test_a_finished_run_plans_nothing(finished):
    assert planned_rules(finished) == {}


def test_a_feature_module_edit_replans_everything_downstream_of_features_only(finished):
    everything = planned_rules(finished, "--forceall")
    with edited(finished / "workflow_scripts" / "features" / "technical.py", "\nEDITED = True\n"):
        plan = planned_rules(finished)
    # Every job of every rule downstream of the feature tables, none upstream.
    assert set(plan) == set(everything) - UPSTREAM_OF_FEATURES
    assert plan == {rule: everything[rule] for rule in plan}
    assert planned_rules(finished) == {}  # the edit undone: nothing left to do


def test_a_registry_edit_replans_only_the_registry_and_its_readers(finished):
    with edited(finished / "workflow_scripts" / "registry" / "store.py", "\nEDITED = True\n"):
        plan = planned_rules(finished)
    assert "register_models" in plan
    upstream = {
        "build_features",
        "train_stage1",
        "tune_stage2",
        "tune_stage3",
        "tune_stage4",
        "fit_production",
        "evaluate_production",
    }
    assert not set(plan) & (upstream | UPSTREAM_OF_FEATURES), plan
