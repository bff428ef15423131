"""Profiles stack: --profile <p> plus the workflow profile profiles/default, whose keys win per key. The
workflow profile must therefore hold no machine limits, or a cluster run would inherit a laptop's cap and
memory."""

from __future__ import annotations

import json
import shutil

import yaml

from tests.ops.helpers import FIXTURES, ROOT, run_snakemake

MACHINE_KEYS = {"cores", "jobs", "resources", "default-resources", "executor", "set-resources", "local-cores"}


def settings(tmp_path, *args: str) -> dict:
    """Effective settings of a dry run from a copy of the repo's profiles (Snakemake finds profiles/default
    next to the Snakefile, exactly as in the repository)."""
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    shutil.copy(FIXTURES / "profiles" / "Snakefile", tmp_path / "Snakefile")
    r = run_snakemake(["-n", *args], cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(x for x in (r.stdout + r.stderr).splitlines() if x.startswith("SETTINGS "))
    return json.loads(line.removeprefix("SETTINGS "))


def test_the_workflow_profile_holds_no_machine_limits():
    keys = set(yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text()))
    assert not keys & MACHINE_KEYS, keys & MACHINE_KEYS
    assert {"retries", "rerun-incomplete", "rerun-triggers"} <= keys


def test_a_slurm_run_keeps_the_cluster_profiles_cap_and_resources(tmp_path):
    s = settings(tmp_path, "--profile", "profiles/slurm")
    cap = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())["jobs"]
    assert s["jobs"] == cap == 12
    assert s["global_resources"] == []  # no laptop memory limit throttling the queue
    assert "mem_mb=4000" in s["default_resources"] and "runtime=45 * attempt" in s["default_resources"]


def test_the_local_profile_is_the_hybrid_mode_and_the_cap_is_overridable(tmp_path):
    s = settings(tmp_path, "--profile", "profiles/local")
    assert (s["cores"], s["jobs"], s["global_resources"]) == (2, 2, ["mem_mb"])
    shutil.rmtree(tmp_path / "profiles")
    sequential = settings(tmp_path, "--profile", "profiles/local", "-j", "1", "-c", "1")
    assert (sequential["cores"], sequential["jobs"]) == (1, 1)
