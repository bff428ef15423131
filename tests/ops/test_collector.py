"""workflow_scripts/ops/collector.py: the garbage collector is paused for the plan and resumed, with the
plan's objects frozen out of its passes, once the DAG is built (the Snakefile's onstart)."""

from __future__ import annotations

import gc

import pytest

from tests.ops.helpers import ROOT
from workflow_scripts.ops import collector


@pytest.fixture
def restore_collector():
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if was_enabled else gc.disable)()


def test_the_plan_pauses_the_collector_and_onstart_resumes_it_with_the_plan_frozen(restore_collector):
    gc.enable()
    collector.pause_for_the_plan()
    assert not gc.isenabled()
    plan = [{"job": i} for i in range(1000)]  # objects of the plan, alive until the end
    frozen_before = gc.get_freeze_count()
    collector.resume_after_the_plan()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(plan)


def test_the_workflow_pauses_at_parse_and_resumes_in_onstart():
    common = (ROOT / "rules" / "common.smk").read_text()
    snakefile = (ROOT / "Snakefile").read_text()
    assert "\ncollector.pause_for_the_plan()\n" in common
    onstart = snakefile.split("onstart:\n", 1)[1].split("\n\n", 1)[0]
    assert "collector.resume_after_the_plan()" in onstart
