"""Timeouts locally: the guard stops a command past its runtime, Snakemake's retries rerun it with a longer
one.

A runtime "minute" is one second here (SWINGFLOW_TIMEOUT_UNIT_S=1), so the whole file runs in seconds.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.ops.helpers import FIXTURES, ROOT, run_env, run_snakemake
from tests.sandbox import copy_workflow
from workflow_scripts.ops import timeout_guard

GUARD = [sys.executable, "-m", "workflow_scripts.ops.timeout_guard"]


def guard(runtime, *cmd, unit="1", grace="1", timeout=30):
    env = run_env(SWINGFLOW_TIMEOUT_UNIT_S=unit, SWINGFLOW_TIMEOUT_GRACE_S=grace)
    return subprocess.run(
        [*GUARD, str(runtime), "--", *cmd],
        env=env,
        cwd=ROOT,
        capture_output=True,
        check=False,
        text=True,
        timeout=timeout,
    )


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie lingers where PID 1 does not reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_guard_passes_exit_code_and_output_through():
    assert guard(5, "sh", "-c", "echo hi; exit 7").returncode == 7
    done = guard(5, "sh", "-c", "echo hi")
    assert done.returncode == 0 and done.stdout == "hi\n"


def test_guard_stops_a_command_past_its_runtime_with_124():
    t0 = time.monotonic()
    r = guard(1, "sleep", "30")
    assert r.returncode == timeout_guard.EXIT_TIMEOUT
    assert time.monotonic() - t0 < 10
    assert "past its runtime of 1 min" in r.stderr


def test_guard_kills_the_whole_process_group(tmp_path):
    # The command leaves a grandchild behind in the background; it must die with the group.
    pidfile = tmp_path / "grandchild.pid"
    r = guard(1, "sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait")
    assert r.returncode == timeout_guard.EXIT_TIMEOUT
    pid = int(pidfile.read_text())
    time.sleep(0.2)
    assert not running(pid), "the grandchild survived the guard"


def test_guard_escalates_to_sigkill_when_sigterm_is_ignored():
    t0 = time.monotonic()
    r = guard(1, "sh", "-c", "trap '' TERM; sleep 30")
    assert r.returncode == timeout_guard.EXIT_TIMEOUT
    assert time.monotonic() - t0 < 10


def test_zero_runtime_means_no_limit_and_bad_usage_is_refused():
    assert guard(0, "sh", "-c", "sleep 1.5").returncode == 0
    assert timeout_guard.main(["x", "--", "true"]) == 2
    assert timeout_guard.main(["1", "true"]) == 2


def smk_timeouts(tmp_path, sleep, base, retries=None):
    args = [
        "-s",
        str(FIXTURES / "timeouts" / "Snakefile"),
        "-d",
        str(tmp_path),
        "--profile",
        str(ROOT / "profiles" / "local"),
        "--workflow-profile",
        str(ROOT / "profiles" / "default"),
        "--config",
        f"sleep={sleep}",
        f"base={base}",
    ]
    if retries is not None:
        args += ["--retries", str(retries)]
    env = run_env(SWINGFLOW_TIMEOUT_UNIT_S="1", SWINGFLOW_TIMEOUT_GRACE_S="1")
    return run_snakemake(args, cwd=tmp_path, env=env, timeout=120)


def test_a_job_past_its_runtime_is_retried_with_a_longer_runtime(tmp_path):
    # Attempt 1: runtime 2 ("min") < sleep 3 -> stopped; attempt 2: runtime 4 -> done. Retries come from the
    # profile.
    r = smk_timeouts(tmp_path, sleep=3, base=2)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "slow.txt").read_text() == "done\n"
    assert (tmp_path / "attempts.txt").read_text().split() == ["2", "4"]
    assert "Trying to restart job" in r.stderr


def test_a_job_always_past_its_runtime_fails_after_two_retries(tmp_path):
    r = smk_timeouts(tmp_path, sleep=60, base=1)
    assert r.returncode != 0
    assert not (tmp_path / "slow.txt").exists()
    # three attempts in all (1 + retries: 2), runtime growing with the attempt
    assert (tmp_path / "attempts.txt").read_text().split() == ["1", "2", "3"]
    assert "past its runtime" in (tmp_path / "logs" / "slow.log").read_text()


# ---- the real workflow: env.compute.runtime_minutes, rules/common.smk's runtime_min and the guard together
TINY = ["env=integration-test", "universe=tiny", "targets=small"]


def attempts_of(rule: str, text: str) -> list[tuple[int, str]]:
    """[(runtime of the attempt, how it ended)] for each job of `rule` in Snakemake's output, in order: the
    text from one job's start block (`rule x:` / `localrule x:`) to the next one's holds its errors."""
    starts = list(re.finditer(r"^(?:local)?rule (\w+):$", text, flags=re.MULTILINE))
    out = []
    for m, nxt in zip(starts, [*starts[1:], None]):
        if m[1] == rule:
            block = text[m.start() : nxt.start() if nxt else len(text)]
            runtime = int(re.search(r"^    resources: .*?\bruntime=(\d+)\b", block, flags=re.MULTILINE)[1])
            out.append((runtime, "timeout" if "returned non-zero exit status 124" in block else "ok"))
    return out


def test_a_real_job_past_its_configured_runtime_is_retried_longer_until_it_fits(tmp_path):
    # ingest_bars gets runtime_minutes=1 from the config, and a "minute" is 0.1 s: far too short for a Python
    # job reading parquet (about 0.5 s), so the guard stops it (exit 124) and Snakemake retries it with
    # 2, 3, ... minutes.
    # --retries leaves room for a loaded machine (up to 6 s); the profile's 2 retries are tested on the
    # fixture above.
    wf = copy_workflow(tmp_path / "wf")
    env = run_env(SWINGFLOW_TIMEOUT_UNIT_S="0.1", SWINGFLOW_TIMEOUT_GRACE_S="1")
    r = run_snakemake(
        [
            "-c1",
            "--retries",
            "60",
            "results/ingest/BTCUSDT.quality.json",
            "--config",
            *TINY,
            'overrides=["+env.compute.runtime_minutes.ingest_bars=1"]',
        ],
        cwd=wf,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    tries = attempts_of("ingest_bars", r.stderr)
    assert len(tries) >= 2 and tries[0] == (1, "timeout"), tries
    assert [t for t, _ in tries] == list(range(1, len(tries) + 1))  # runtime = configured 1 min x attempt
    assert [e for _, e in tries[:-1]] == ["timeout"] * (len(tries) - 1)
    assert "past its runtime of 1 min (1 min = 0.1 s here)" in r.stderr
    quality = json.loads((wf / "results/ingest/BTCUSDT.quality.json").read_text())
    assert quality["symbol"] == "BTCUSDT"
    assert "past its runtime" not in (wf / "logs/ingest/BTCUSDT.log").read_text()  # the last attempt finished
