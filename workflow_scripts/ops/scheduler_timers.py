"""Let a local run end as soon as its last job does, with a long job-rate-limiter span.

Snakemake's job rate limiter (`--max-jobs-per-timespan`, default 100/1s) arms a `threading.Timer` of one span
at every scheduling round that had jobs ready, and each timer starts another round when it fires. With jobs
waiting for a core, the chains never end: the 151-job demo woke the scheduler ~15,000 times, and every round
re-evaluates the params and resources of every waiting job (docs/ARCHITECTURE.md, "Where a run's CPU goes";
upstream: snakemake/snakemake#3744). profiles/local therefore sets a long span (`6000/60s`, never a limit on
2-8 cores), which leaves the chains few; but the timers are not daemon threads, so the Snakemake process
would wait up to a span for them at exit. The Snakefile's onsuccess and onerror call
`cancel_rescheduling_timers`: the run is over, no round is needed, and the process exits at once.

Only the main process runs the hooks (Snakemake starts a cluster job's own Snakemake with --no-hooks), which
is why the long span lives in profiles/local and not in profiles/default, which every cluster job loads too.
"""

from __future__ import annotations

import threading

# the lambda inside snakemake.scheduling.job_scheduler.JobScheduler._schedule_reevalutation (sic)
RESCHEDULING = "JobScheduler._schedule_reevalutation.<locals>."


def cancel_rescheduling_timers() -> int:
    """Cancel the scheduler's pending re-evaluation timers; how many were pending. Other timers are left."""
    pending = [
        t
        for t in threading.enumerate()
        if isinstance(t, threading.Timer) and getattr(t.function, "__qualname__", "").startswith(RESCHEDULING)
    ]
    for timer in pending:
        timer.cancel()
    return len(pending)
