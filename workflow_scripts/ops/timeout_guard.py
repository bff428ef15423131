"""Stop a job's command when it runs past its `runtime`, so Snakemake's `retries` rerun it with a longer one.

Snakemake's local executor does not enforce the `runtime` resource (Slurm does, through `sbatch -t`). Rules
put their command behind this guard so a local job is stopped the same way:

    {GUARD} {resources.runtime} -- {PYTHON} -m workflow_scripts.job train_stage1 <manifest> > {log} 2>&1

with GUARD = f"{sys.executable} -m workflow_scripts.ops.timeout_guard" and a runtime that grows with the
attempt (`runtime=lambda wc, attempt: 45 * attempt`). The command runs in its own process group; past the
runtime the whole group gets SIGTERM, then SIGKILL after a grace period, and the guard exits 124 (as coreutils
`timeout`). A SIGTERM / SIGINT sent to the guard (Snakemake cancelling, Slurm's own limit) is passed to the
group.

Units: `runtime` is minutes (Snakemake's unit). SWINGFLOW_TIMEOUT_UNIT_S (seconds per runtime unit, default
60) exists for tests, which set it to 1 so "2 minutes" pass in 2 seconds. SWINGFLOW_TIMEOUT_GRACE_S (default
10) is the wait between SIGTERM and SIGKILL. A runtime of 0 or less means no limit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

EXIT_TIMEOUT = 124


def _kill_group(proc: subprocess.Popen, grace: float) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:  # also the group's stragglers once the leader is gone
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run(runtime: float, cmd: list[str], unit_s: float = 60.0, grace_s: float = 10.0) -> int:
    """Run `cmd` for at most `runtime` units; its exit code, or 124 when it ran out of time."""
    limit = runtime * unit_s
    proc = subprocess.Popen(cmd, start_new_session=True)

    def forward(signum, _frame):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass

    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    start = time.monotonic()
    try:
        try:
            return proc.wait(timeout=limit if limit > 0 else None)
        except subprocess.TimeoutExpired:
            _kill_group(proc, grace_s)
            print(
                f"timeout_guard: stopped after {time.monotonic() - start:.1f} s: past its runtime of "
                f"{runtime:g} "
                f"min{'' if unit_s == 60 else f' (1 min = {unit_s:g} s here)'}; exit {EXIT_TIMEOUT}, "
                "Snakemake retries it with a longer runtime if attempts are left",
                file=sys.stderr,
                flush=True,
            )
            return EXIT_TIMEOUT
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if proc.poll() is None:  # interrupted while waiting: leave no orphans behind
            _kill_group(proc, grace_s)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        print(
            "usage: python -m workflow_scripts.ops.timeout_guard RUNTIME_MIN -- COMMAND [ARG ...]",
            file=sys.stderr,
        )
        return 2
    try:
        runtime = float(argv[0])
    except ValueError:
        print(f"timeout_guard: runtime must be a number of minutes, got {argv[0]!r}", file=sys.stderr)
        return 2
    unit = float(os.environ.get("SWINGFLOW_TIMEOUT_UNIT_S", "60"))
    grace = float(os.environ.get("SWINGFLOW_TIMEOUT_GRACE_S", "10"))
    return run(runtime, argv[2:], unit_s=unit, grace_s=grace)


if __name__ == "__main__":
    sys.exit(main())
