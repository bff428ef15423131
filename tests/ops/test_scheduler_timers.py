"""profiles/local's long rate-limiter span and the Snakefile hooks that cancel Snakemake's rescheduling timers
(workflow_scripts/ops/scheduler_timers.py): a run ends with its last job, not a span later."""

from __future__ import annotations

import threading
import time

from tests.ops.helpers import FIXTURES, run_env, run_snakemake
from workflow_scripts.ops.scheduler_timers import cancel_rescheduling_timers


class JobScheduler:  # named like Snakemake's, whose method builds the timers the same way
    def _schedule_reevalutation(self, delay):
        timer = threading.Timer(delay, lambda: None)
        timer.start()
        return timer


def test_only_the_schedulers_timers_are_cancelled():
    theirs = [JobScheduler()._schedule_reevalutation(60) for _ in range(3)]
    other = threading.Timer(60, lambda: None)
    other.start()
    try:
        assert cancel_rescheduling_timers() == 3
        for t in theirs:
            t.join(timeout=5)
            assert not t.is_alive()
        assert other.is_alive()
        assert cancel_rescheduling_timers() == 0
    finally:
        other.cancel()


def test_a_run_with_a_long_span_ends_with_its_last_job(tmp_path):
    # Four 1 s jobs on one core and a 60 s span: without the hooks the process waits for the last timers
    # (~60 s after its last job); with them it ends within seconds of it.
    snakefile = FIXTURES / "timers" / "Snakefile"
    args = ["-s", str(snakefile), "-d", str(tmp_path), "-c1", "-j1", "--max-jobs-per-timespan", "6000/60s"]
    t0 = time.monotonic()
    r = run_snakemake(args, cwd=tmp_path, env=run_env(), timeout=240)
    seconds = time.monotonic() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{i}.txt" for i in range(4)]
    assert seconds < 40, f"the run took {seconds:.0f} s: the rescheduling timers were not cancelled"
