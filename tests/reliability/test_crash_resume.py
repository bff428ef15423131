"""Crash and resume, on a real tiny run: SIGKILL Snakemake and its jobs at three points, check what is left,
resume, and compare the resumed run with an uninterrupted one byte for byte (determinism included)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import (
    RUN,
    env,
    finished_jobs_of_log,
    hashes,
    incomplete_outputs,
    jobs_of_dry_run,
    output_text,
    planned_jobs,
    sandbox,
    smk,
    tmp_leftovers,
    unfinished_jobs,
    unreadable_outputs,
)
from tests.sandbox import snakemake_cmd

pytestmark = pytest.mark.slow

# (name, glob of the file whose appearance means: this stage is under way, kill now)
KILL_POINTS = [
    ("features", "results/features/base/*.parquet"),
    ("stage1", "results/stage1/*/w*/*/metrics.json"),
    ("best_variant", "results/best_variant/*/w*/*.json"),
]
LOCK_MESSAGE = "Directory cannot be locked"


def _session_members(sid: int) -> list[int]:
    """Processes of the session we started (Snakemake and every job it spawned)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid:  # field 6 of stat: session id
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in _session_members(proc.pid):  # a job that made its own process group is still in our session
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=60)
    deadline = time.time() + 30
    while _session_members(proc.pid) and time.time() < deadline:
        time.sleep(0.2)


def _locks(wd: Path) -> list[str]:
    return sorted(p.name for p in (wd / ".snakemake" / "locks").glob("*.lock"))


def _dry_run_of_a_copy(wd: Path) -> subprocess.CompletedProcess:
    """`snakemake -n` on a copy of the folder as the kill left it: a dry run clears a dead run's lock too, and
    the lock must stay for the next real run, which proves that the same command resumes on its own."""
    copy = wd.parent / "dry"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(wd, copy, symlinks=True)
    try:
        return smk(copy, "-n", config=RUN)
    finally:
        shutil.rmtree(copy, ignore_errors=True)


@pytest.fixture(scope="session")
def crash_run(tmp_path_factory):
    """Run the tiny workflow, SIGKILL Snakemake and its jobs when a stage's first output appears, and start
    the SAME command again (no --unlock), three times; then let the same command finish."""
    wd = sandbox(tmp_path_factory.mktemp("crash") / "wf")
    plan = smk(wd, "-n", config=RUN)
    assert plan.returncode == 0, output_text(plan)[-3000:]
    jobs = jobs_of_dry_run(plan.stdout)
    assert len(jobs) > 20
    cmd = snakemake_cmd(config=RUN)
    record: dict = {"jobs": jobs, "points": [], "lock_probe": None, "restarts": []}
    for i, (name, pattern) in enumerate(KILL_POINTS):
        logf = open(wd / f"run{i}.log", "w")
        proc = subprocess.Popen(
            cmd, cwd=wd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True, env=env()
        )
        try:
            if record["lock_probe"] is None:  # a second Snakemake on the same directory while this one runs
                while not list((wd / ".snakemake" / "locks").glob("*")) and proc.poll() is None:
                    time.sleep(0.1)
                record["lock_probe"] = smk(wd, config=RUN, timeout=300)
                record["lock_probe_first_alive"] = proc.poll() is None
                record["lock_probe_first_pid"] = proc.pid
            while not glob.glob(str(wd / pattern)) and proc.poll() is None:
                time.sleep(0.1)
            finished_first = proc.poll() is not None
        finally:
            _kill(proc)
            logf.close()
        if i > 0:
            record["restarts"].append((wd / f"run{i}.log").read_text())
        point = {
            "name": name,
            "finished_before_kill": finished_first,
            "unreadable": unreadable_outputs(wd),
            "tmp": tmp_leftovers(wd),
            "incomplete": sorted(incomplete_outputs(wd)),
            "unfinished": unfinished_jobs(wd, jobs),
            "locks": _locks(wd),
        }
        dry = _dry_run_of_a_copy(wd)
        point["planned"] = {r: n for r, n in planned_jobs(dry).items() if r != "all"}
        point["dry_rc"] = dry.returncode
        record["points"].append(point)
    # Resume with exactly the same command.
    same = smk(wd, config=RUN, timeout=1800)
    record["same_command"] = same
    if same.returncode != 0 and LOCK_MESSAGE in output_text(same):
        smk(wd, "--unlock", config=RUN)  # only so that the tests after the failing one still say something
        same = smk(wd, config=RUN, timeout=1800)
    record["resume"] = same
    record["after"] = {
        "unreadable": unreadable_outputs(wd),
        "tmp": tmp_leftovers(wd),
        "planned": planned_jobs(smk(wd, "-n", config=RUN)),
    }
    return wd, record


def test_second_snakemake_on_a_running_directory_is_refused(crash_run):
    _, rec = crash_run
    probe = rec["lock_probe"]
    assert rec["lock_probe_first_alive"], "the first run ended before the probe: nothing to test"
    assert probe.returncode != 0
    assert LOCK_MESSAGE in output_text(probe), output_text(probe)[-2000:]
    assert f"Snakemake pid {rec['lock_probe_first_pid']} " in output_text(probe)  # names the live owner


def test_sigkill_leaves_a_lock_and_the_same_command_clears_it_and_runs(crash_run):
    """Every kill leaves Snakemake's lock; each restart of the same command removes it (dead owner) and
    runs."""
    _, rec = crash_run
    assert all(p["locks"] for p in rec["points"]), [p["locks"] for p in rec["points"]]
    assert len(rec["restarts"]) == len(KILL_POINTS) - 1
    for log in rec["restarts"]:
        assert LOCK_MESSAGE not in log and "removed the lock left by Snakemake pid" in log, log[-2000:]


@pytest.mark.parametrize("point", [p[0] for p in KILL_POINTS])
def test_kill_leaves_no_half_written_output(crash_run, point):
    _, rec = crash_run
    p = next(x for x in rec["points"] if x["name"] == point)
    assert not p["finished_before_kill"], f"the run finished before the {point} kill point"
    assert p["unreadable"] == [], (
        f"after a kill during {point}: outputs that do not read back: {p['unreadable']}"
    )


@pytest.mark.parametrize("point", [p[0] for p in KILL_POINTS])
def test_resume_plans_exactly_the_unfinished_jobs(crash_run, point):
    """The dry run right after the kill plans, per rule, exactly the jobs with an output missing or marked
    incomplete: finished jobs are never redone, unfinished ones always are."""
    _, rec = crash_run
    p = next(x for x in rec["points"] if x["name"] == point)
    assert p["dry_rc"] == 0
    assert p["planned"], "nothing planned after a kill in the middle of the run"
    assert p["planned"] == p["unfinished"], (
        f"kill during {point}: planned {p['planned']} != unfinished {p['unfinished']} "
        f"(incomplete markers: {p['incomplete']})"
    )


def test_rerun_of_the_same_command_after_sigkill_completes(crash_run):
    """`snakemake ...` again after a SIGKILL: must run, not stop on the dead run's lock."""
    _, rec = crash_run
    same = rec["same_command"]
    assert "removed the lock left by Snakemake pid" in output_text(same)
    assert same.returncode == 0, (
        "rerunning the same command after SIGKILL did not complete:\n" + output_text(same)[-1500:]
    )


def test_resumed_run_completes_and_redoes_only_the_unfinished_jobs(crash_run):
    wd, rec = crash_run
    resume = rec["resume"]
    assert resume.returncode == 0, output_text(resume)[-3000:]
    last = rec["points"][-1]
    assert finished_jobs_of_log(output_text(resume)) == last["planned"]
    assert rec["after"]["planned"] == {}, "after the resume there is still something to do"
    assert rec["after"]["unreadable"] == []
    assert (wd / "results" / "best_variant" / "summary.md").is_file()


def test_no_temporary_files_left_after_resume(crash_run):
    """A killed atomic write leaves `.<name>.<random>.tmp`; nothing reads it, and the resume must not keep
    it."""
    _, rec = crash_run
    seen = sorted({t for p in rec["points"] for t in p["tmp"]})
    assert rec["after"]["tmp"] == [], f"temporaries left by killed jobs: {rec['after']['tmp']} (seen: {seen})"


# ---- determinism -------------------------------------------------------------------------------------------
CORE = (
    "results/ingest/",
    "results/features/",
    "results/targets/",
    "results/splits/",
    "results/stage1/",
    "results/best_variant/",
    "results/costs/",
    "results/config/",
)


def test_two_runs_give_byte_identical_models_metrics_features_and_targets(clean_run, crash_run):
    """The uninterrupted run and the killed-and-resumed run (computed independently from the raw bars: no file
    of one is used by the other) agree byte for byte on every model, metrics file, split, feature and target
    table (training_log.json, which holds timings, and results/benchmarks excepted)."""
    wd, rec = crash_run
    assert rec["resume"].returncode == 0
    a = {k: v for k, v in hashes(clean_run).items() if k.startswith(CORE)}
    b = {k: v for k, v in hashes(wd).items() if k.startswith(CORE)}
    assert any(k.endswith("model.txt") for k in a) and any(k.startswith("results/features/") for k in a)
    only = sorted(set(a) ^ set(b))
    assert only == [], f"files present in one run only: {only[:10]}"
    differ = sorted(k for k in a if a[k] != b[k])
    assert differ == [], f"{len(differ)} files differ between two runs, e.g. {differ[:10]}"


def test_two_runs_give_byte_identical_everything_else(clean_run, crash_run):
    """Evaluation results, plots and headline metrics too."""
    wd, rec = crash_run
    assert rec["resume"].returncode == 0
    a = {k: v for k, v in hashes(clean_run).items() if not k.startswith(CORE)}
    b = {k: v for k, v in hashes(wd).items() if not k.startswith(CORE)}
    only = sorted(set(a) ^ set(b))
    assert only == [], f"files present in one run only: {only[:10]}"
    differ = sorted(k for k in a if a[k] != b[k])
    assert differ == [], f"{len(differ)} files differ between two runs, e.g. {differ[:10]}"


def test_the_sha256_of_every_trained_stage1_model_is_recorded_and_matches(clean_run):
    """Each stage-1 model's sha256 is written down by the workflow (stage-1 metrics.json or its evaluation
    result, key model_sha256) and matches the bytes on disk, so a changed model.txt is detectable.
    evaluate_stage1 checks it before use (test_integrity.py, test_bad_input.py).
    """
    from workflow_scripts.artifacts import sha256_file

    checked = []
    for ev in sorted((clean_run / "results" / "evaluation" / "stage1").rglob("*.json")):
        sym, w, target = ev.parts[-3], ev.parts[-2], ev.stem
        folder = clean_run / "results" / "stage1" / sym / w / target
        rec = json.loads(ev.read_text())
        if rec.get("status") != "evaluated":
            continue
        recorded = _find_key(json.loads((folder / "metrics.json").read_text()), "model_sha256")
        recorded = recorded or _find_key(rec, "model_sha256")
        assert recorded is not None, (
            f"no model_sha256 for {folder / 'model.txt'} in {folder / 'metrics.json'} or {ev}"
        )
        assert recorded == sha256_file(folder / "model.txt"), (
            f"recorded sha256 does not match {folder / 'model.txt'}"
        )
        checked.append(target)
    assert len(checked) >= 8


def _find_key(obj, key):
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            found = _find_key(v, key)
            if found is not None:
                return found
    elif isinstance(obj, list):
        for v in obj:
            found = _find_key(v, key)
            if found is not None:
                return found
    return None
