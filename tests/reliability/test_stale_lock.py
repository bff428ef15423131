"""A lock left by a killed Snakemake is cleared by the next run of the same command; a live Snakemake's lock
is not (workflow_scripts.ops.stale_lock, called from rules/common.smk). Unit cases on real processes, then one
real workflow killed with SIGKILL while it holds its lock (fast: ingest jobs only)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import TINY, env, output_text, sandbox, smk
from tests.sandbox import ROOT, snakemake_cmd
from workflow_scripts.ops import stale_lock

LOCK_MESSAGE = "Directory cannot be locked"


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def _locks(smk_dir: Path) -> list[Path]:
    (smk_dir / "locks").mkdir(parents=True, exist_ok=True)
    paths = [smk_dir / "locks" / "0.input.lock", smk_dir / "locks" / "0.output.lock"]
    for p in paths:
        p.write_text("results/ingest/BTCUSDT.parquet\n")
    return paths


def test_lock_of_a_live_owner_stays_and_the_message_names_it(tmp_path):
    smk_dir = tmp_path / ".snakemake"
    proc = _sleeper()
    try:
        stale_lock.register(smk_dir, pid=proc.pid)
        locks = _locks(smk_dir)
        lines = stale_lock.clear_stale_locks(smk_dir)
        assert all(p.exists() for p in locks)
        assert len(lines) == 1 and f"pid {proc.pid}" in lines[0] and "is running" in lines[0]
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_dead_owner_is_removed_with_its_record(tmp_path):
    smk_dir = tmp_path / ".snakemake"
    proc = _sleeper()
    record = stale_lock.register(smk_dir, pid=proc.pid)
    locks = _locks(smk_dir)
    proc.kill()
    proc.wait()
    lines = stale_lock.clear_stale_locks(smk_dir)
    assert not any(p.exists() for p in locks) and not record.exists()
    assert len(lines) == 1 and f"pid {proc.pid}" in lines[0] and "no longer running" in lines[0]


def test_a_reused_pid_is_not_mistaken_for_the_owner(tmp_path):
    """The record's pid runs again but started at another time (a different process): the owner is dead."""
    smk_dir = tmp_path / ".snakemake"
    record = stale_lock.register(smk_dir, pid=os.getpid())
    rec = stale_lock.owner_records(smk_dir)[record]
    assert stale_lock.is_alive(rec)
    stale_lock.artifacts.write_json(record, rec | {"started": rec["started"] - 3600.0})
    locks = _locks(smk_dir)
    stale_lock.clear_stale_locks(smk_dir)
    assert not any(p.exists() for p in locks)


def test_owner_on_another_host_and_lock_without_owner_are_left_alone(tmp_path):
    smk_dir = tmp_path / ".snakemake"
    locks = _locks(smk_dir)
    lines = stale_lock.clear_stale_locks(smk_dir)
    assert all(p.exists() for p in locks) and "no owner record" in lines[0]
    stale_lock.artifacts.write_json(
        smk_dir / stale_lock.OWNERS_DIR / "elsewhere.1.json", {"host": "elsewhere", "pid": 1, "started": 0.0}
    )
    lines = stale_lock.clear_stale_locks(smk_dir)
    assert all(p.exists() for p in locks) and "on elsewhere" in lines[0]


def test_claim_records_the_caller_and_its_exit_removes_the_record(tmp_path):
    code = (
        "import sys, os; from workflow_scripts.ops import stale_lock; stale_lock.claim(sys.argv[1]); "
        "print(sorted(os.listdir(os.path.join(sys.argv[1], 'swingflow-owners'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / ".snakemake")],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.strip().endswith(".json']")  # its own record while it ran
    assert list((tmp_path / ".snakemake" / "swingflow-owners").iterdir()) == []  # gone after a normal exit


# ---- the real workflow -------------------------------------------------------------------------------------
INGEST = ["results/ingest/BTCUSDT.parquet", "results/ingest/ETHUSDT.parquet"]


@pytest.fixture(scope="module")
def killed_holding_its_lock(tmp_path_factory):
    """A real Snakemake (ingest of both coins) that holds the directory lock: paused (SIGSTOP) while a second
    Snakemake is started on the same directory, then SIGKILLed with its jobs."""
    wd = sandbox(tmp_path_factory.mktemp("lock") / "wf")
    proc = subprocess.Popen(
        snakemake_cmd(*INGEST, config=TINY),
        cwd=wd,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while (
        not list((wd / ".snakemake" / "locks").glob("*.lock"))
        and proc.poll() is None
        and time.time() < deadline
    ):
        time.sleep(0.05)
    alive = proc.poll() is None
    if alive:  # stopped, not ended: it holds its lock and its pid while the second Snakemake tries
        os.killpg(proc.pid, signal.SIGSTOP)
    probe = smk(wd, *INGEST, timeout=300) if alive else None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return wd, proc.pid, alive, probe


def test_a_second_snakemake_on_a_live_run_is_refused_naming_the_owner(killed_holding_its_lock):
    _, pid, alive, probe = killed_holding_its_lock
    assert alive, "the first Snakemake ended before it was probed: nothing to test"
    text = output_text(probe)
    assert probe.returncode != 0 and LOCK_MESSAGE in text, text[-2000:]
    assert f"Snakemake pid {pid} " in text and "its lock stays" in text


def test_the_same_command_after_sigkill_resumes_without_unlock(killed_holding_its_lock):
    wd, pid, _, _ = killed_holding_its_lock
    assert list((wd / ".snakemake" / "locks").glob("*.lock")), "the kill left no lock: nothing to test"
    again = smk(wd, *INGEST, timeout=600)
    text = output_text(again)
    assert again.returncode == 0, text[-3000:]
    assert f"removed the lock left by Snakemake pid {pid}" in text
    assert all((wd / p).is_file() for p in INGEST)
    assert not list((wd / ".snakemake" / "locks").glob("*.lock"))
    assert not list((wd / ".snakemake" / stale_lock.OWNERS_DIR).glob("*.json"))
