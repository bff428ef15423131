"""benchmarks/slurm_slice.py without a cluster: what it counts from Snakemake's and slurmctld's logs, the
targets of a slice, and that a run which ignores SIGTERM is still killed by `timeout -k 10` (Snakemake's
Slurm status loop does; measured: with /usr/bin/time between `timeout` and Snakemake, Snakemake outlived
the run)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmarks.slurm_slice import count_jobs, job_cpu, run_logged, slice_targets, slurm_job_seconds
from workflow_scripts.job import cpu_line

SNAKEMAKE_LOG = """\
Job 3 has been submitted with SLURM jobid 11 (log: /w/.snakemake/slurm_logs/rule_ingest_bars/A/11.log).
Finished jobid: 7 (Rule: split_segments)
Job 3 has been submitted with SLURM jobid 12 (log: /w/.snakemake/slurm_logs/rule_ingest_bars/A/12.log).
Finished jobid: 3 (Rule: ingest_bars)
Job 4 has been submitted with SLURM jobid 13 (log: /w/.snakemake/slurm_logs/rule_build_features/A/13.log).
Finished jobid: 4 (Rule: build_features)
Finished jobid: 0 (Rule: all)
"""

CTLD_LOG = """\
[2026-12-02T05:40:18.964] _slurm_rpc_submit_batch_job: JobId=11 InitPrio=4294901753 usec=171
[2026-12-02T05:40:20.000] sched: Allocate JobId=11 NodeList=vm #CPUs=1 Partition=main
[2026-12-02T05:41:00.500] _job_complete: JobId=11 WEXITSTATUS 1
[2026-12-02T05:41:00.501] _job_complete: JobId=11 done
[2026-12-02T05:41:02.000] sched: Allocate JobId=12 NodeList=vm #CPUs=1 Partition=main
[2026-12-02T05:41:12.000] _job_complete: JobId=12 WEXITSTATUS 0
[2026-12-02T05:41:13.000] sched: Allocate JobId=99 NodeList=vm #CPUs=1 Partition=main
[2026-12-02T05:49:13.000] _job_complete: JobId=99 WEXITSTATUS 0
[2026-12-02T05:41:14.000] sched: Allocate JobId=13 NodeList=vm #CPUs=1 Partition=main
"""


def test_jobs_are_counted_as_slurm_or_local_and_retries_as_extra_sbatch_calls():
    counted = count_jobs(SNAKEMAKE_LOG, local={"split_segments", "all"})
    assert counted["jobs"] == 4
    assert counted["slurm_jobs"] == 2  # ingest_bars (after a retry) and build_features
    assert counted["local_jobs"] == 2  # split_segments and all
    assert counted["sbatch_calls"] == 3
    assert counted["per_rule"] == {"split_segments": 1, "ingest_bars": 1, "build_features": 1, "all": 1}


def test_slot_seconds_are_read_per_job_from_allocation_to_completion():
    # 11: 40.5 s, 12: 10 s; 99 is another run's job; 13 has not completed
    held = slurm_job_seconds(CTLD_LOG, ["11", "12", "13"])
    assert held == {"slurm_job_s_mean": 25.2, "slurm_job_s_max": 40.5}
    assert slurm_job_seconds(CTLD_LOG, ["13"]) == {"slurm_job_s_mean": None, "slurm_job_s_max": None}


def test_cpu_inside_jobs_comes_from_each_jobs_log_line_and_wall_from_the_last_benchmark_row(tmp_path):
    head = "s\th:m:s\tmax_rss\tcpu_time\n"
    files = {
        "features/base/A.tsv": head + "5.5\t0:00:05\t180\t4.0\n",
        "stage1/A/w20.tsv": head + "60.0\t0:01:00\t300\t50.0\n20.0\t0:00:20\t310\t18.5\n",  # a retry
    }
    for name, text in files.items():
        path = tmp_path / "results" / "benchmarks" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    logs = {
        "features/base/A.log": cpu_line("features.build_features", 3.5) + "\n",
        # a retried job: its log holds the last attempt only (the rule writes it with `>`)
        "stage1/A/w20.log": "INFO training\n" + cpu_line("training.train_stage1", 17.25) + "\n",
        "targets/A/w20.log": "swingflow error: bad input\n",  # a failed job has no CPU line
    }
    for name, text in logs.items():
        path = tmp_path / "logs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    got = job_cpu(tmp_path)
    assert {k: got[k] for k in ("logged_jobs", "job_cpu_s", "benchmarked_jobs", "job_wall_s")} == {
        "logged_jobs": 2,
        "job_cpu_s": 20.8,  # 3.5 + 17.25, rounded to 0.1
        "benchmarked_jobs": 2,
        "job_wall_s": 25.5,
    }


def test_slice_targets_name_every_coin_of_the_universe():
    assert slice_targets(5, "all") == []
    features = slice_targets(5, "features")
    assert features[:3] == [
        "results/features/BTCUSDT.parquet",
        "results/features/ETHUSDT.parquet",
        "results/features/S0001USDT.parquet",
    ]
    assert len(features) == 5
    assert slice_targets(3, "stage1")[-1] == "results/stage1/S0001USDT/w20"


def test_a_run_that_ignores_sigterm_is_killed_after_its_timeout(tmp_path):
    pid_file = tmp_path / "pid"
    script = f"trap '' TERM; echo $$ > {pid_file}; sleep 120"
    t0 = time.monotonic()
    r = run_logged(["bash", "-c", script], tmp_path, dict(os.environ), tmp_path / "run.log", timeout=1)
    assert r["rc"] == 137  # SIGKILL from `timeout -k 10`, 10 s after the ignored SIGTERM
    assert time.monotonic() - t0 < 30
    stat = Path(f"/proc/{int(pid_file.read_text())}/stat")
    # gone, or a zombie (killed with its parent `timeout`; where PID 1 does not reap, it lingers as one) once
    # the kernel has delivered the SIGKILL (a moment after `timeout` itself died)
    for _ in range(50):
        state = stat.read_text().rsplit(") ", 1)[1].split()[0] if stat.exists() else "gone"
        if state in ("gone", "Z"):
            break
        time.sleep(0.1)
    assert state in ("gone", "Z"), f"the command outlived its timeout (state {state})"
