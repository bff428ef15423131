"""profiles/slurm against a REAL single-node Slurm that this module starts (scripts/slurm_local.sh) and stops.
The test cluster adds only its own flags (CLUSTER_FLAGS: no accounts, keep the per-job logs, poll sooner, 4
jobs).

Proof that the jobs went through Slurm: every job's output records $SLURM_JOB_ID, the plugin's per-job logs
sit under .snakemake/slurm_logs/, and slurmctld's own log shows each job id allocated. GPU requests from the
profile (a rule's `gpu=1`, as fit_production declares for torch models, and `gres="gpu:1"`) reach Slurm:
`scontrol show job` of the running job lists the GPU and Slurm sets CUDA_VISIBLE_DEVICES (the GPUs are fake:
mknod character devices).

Skipped when not root or when the packages cannot be installed. Every command runs under `timeout -k 10`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ops.helpers import FIXTURES, ROOT, free_port_pair, run_env, run_snakemake
from tests.sandbox import copy_workflow

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "scripts" / "slurm_local.sh"
PROFILE = ROOT / "profiles" / "slurm"
# What a cluster without slurmdbd and a test that reads the per-job logs need on top of profiles/slurm.
CLUSTER_FLAGS = [
    "--slurm-no-account",
    "--slurm-keep-successful-logs",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "-j",
    "4",
]
TIMINGS: dict[str, float] = {}


@dataclass
class Cluster:
    state: Path
    env: dict
    start_s: float

    def scontrol_job(self, job_id: str) -> str:
        return subprocess.run(
            ["timeout", "-k", "5", "30", "scontrol", "show", "job", job_id],
            env=self.env,
            capture_output=True,
            check=False,
            text=True,
        ).stdout

    def ctld_log(self) -> str:
        return (self.state / "log" / "slurmctld.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("a real Slurm needs root (munged, slurmd); run the slow tests as root or in CI")
    state = tmp_path_factory.mktemp("slurm")
    env = run_env(
        SWINGFLOW_SLURM_DIR=str(state),
        SWINGFLOW_SLURM_PORT=str(free_port_pair()),
        SWINGFLOW_SLURM_CPUS="4",
        SLURM_CONF=str(state / "etc" / "slurm.conf"),
    )
    t0 = time.monotonic()
    r = subprocess.run(
        ["timeout", "-k", "10", "600", "bash", str(SCRIPT), "start", "--gpus", "2"],
        env=env,
        capture_output=True,
        check=False,
        text=True,
    )
    start_s = time.monotonic() - t0
    if r.returncode == 3:
        pytest.skip(f"Slurm packages could not be installed: {r.stderr.strip()[-500:]}")
    if r.returncode == 4:
        pytest.skip("a real Slurm needs root")
    try:
        assert r.returncode == 0, f"slurm_local.sh start failed ({r.returncode}):\n{r.stderr}"
        TIMINGS["slurm start (s)"] = round(start_s, 1)
        yield Cluster(state, env, start_s)
    finally:
        subprocess.run(
            ["timeout", "-k", "10", "60", "bash", str(SCRIPT), "stop"],
            env=env,
            capture_output=True,
            check=False,
        )
        print(f"\nslurm timings: {TIMINGS}")


def slurm_snakemake(
    cluster: Cluster, snakefile: Path, workdir: Path, *extra: str, timeout: int = 420, env: dict | None = None
):
    args = [*extra, "-s", str(snakefile), "-d", str(workdir), "--profile", str(PROFILE), *CLUSTER_FLAGS]
    t0 = time.monotonic()
    r = run_snakemake(args, cwd=workdir, env={**cluster.env, **(env or {})}, timeout=timeout)
    return r, time.monotonic() - t0


def slurm_job_logs(workdir: Path) -> dict[str, Path]:
    """{slurm job id: its log} from the plugin's log folder
    (.snakemake/slurm_logs/<rule>/<wildcards>/<id>.log)."""
    return {p.stem: p for p in (workdir / ".snakemake" / "slurm_logs").rglob("*.log") if p.stem.isdigit()}


def test_the_cluster_is_up_with_fake_gpus(slurm):
    r = subprocess.run(
        ["timeout", "-k", "5", "30", "scontrol", "show", "node"],
        env=slurm.env,
        capture_output=True,
        check=False,
        text=True,
    )
    assert "Gres=gpu:2" in r.stdout and "State=IDLE" in r.stdout, r.stdout
    status = subprocess.run(
        ["timeout", "-k", "5", "30", "bash", str(SCRIPT), "status"],
        env=slurm.env,
        capture_output=True,
        check=False,
        text=True,
    )
    assert status.returncode == 0 and "slurmctld: running" in status.stdout


def test_a_small_workflow_runs_through_slurm_with_gpu_requests(slurm, tmp_path):
    r, seconds = slurm_snakemake(slurm, FIXTURES / "slurm" / "Snakefile", tmp_path)
    TIMINGS["fixture workflow, 6 jobs (s)"] = round(seconds, 1)
    assert r.returncode == 0, r.stderr[-4000:]

    outputs = [tmp_path / f"work/{s}.txt" for s in "abc"] + [
        tmp_path / "gathered.txt",
        tmp_path / "gpu/gpu.txt",
        tmp_path / "gpu/gres.txt",
    ]
    job_ids = set()
    for out in outputs:
        ids = re.findall(r"job=(\w+)", out.read_text())
        assert ids and all(i.isdigit() for i in ids), (
            f"{out} did not run inside a Slurm job: {out.read_text()}"
        )
        job_ids.update(ids)
    assert len(job_ids) == 6  # one Slurm job per Snakemake job (the `all` rule is local)
    logs = slurm_job_logs(tmp_path)
    assert job_ids <= set(logs), f"job ids {job_ids} vs plugin logs {sorted(logs)}"
    ctld = slurm.ctld_log()
    for jid in job_ids:
        assert re.search(rf"JobId={jid}\b", ctld), f"job {jid} not in slurmctld's log"

    # GPU: a rule's gpu=1 (-> --gpus=1, as fit_production declares for torch models) and gres="gpu:1" (->
    # --gres)
    for name in ("gpu", "gres"):
        text = (tmp_path / f"gpu/{name}.txt").read_text()
        assert re.search(r"cuda=[01]\b", text), text  # Slurm bound one of the two (fake) GPUs
        # --gpus=1 shows as TresPerJob, --gres=gpu:1 as TresPerNode (Slurm 22.05)
        assert re.search(r"(TresPerJob|TresPerNode)=gres[:/]gpu[:=]1", text), text


def submitted_jobs(stderr: str) -> dict[str, list[str]]:
    """{rule: [Slurm job ids in submission order]} from the plugin's lines in Snakemake's output."""
    jobs: dict[str, list[str]] = {}
    for jid, rule in re.findall(
        r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+?)/", stderr
    ):
        jobs.setdefault(rule, []).append(jid)
    return jobs


def test_the_real_workflow_runs_through_slurm_and_a_timed_out_job_is_retried_longer(slurm, tmp_path):
    # The real Snakefile (from a sandbox copy: its own profiles/default is loaded too) up to one coin's
    # cross-coin features: resolved config, ingest x2, base features x2, cross-coin features, on the short
    # integration-test span. ingest_bars gets runtime_minutes=1 and a "minute" of 0.5 s: the guard inside the
    # Slurm job stops it, the job fails, and the plugin resubmits it with `-t` = 2, 3, ... minutes until it
    # fits (the other rules get 600 "minutes" = 300 s, so only ingest is squeezed). An ingest job can finish
    # inside 0.5 s on a fast machine (CI saw it), so a sitecustomize on PYTHONPATH makes each ingest job's own
    # process sleep 0.6 s first: the first attempt always runs out of time, whatever the machine.
    wf = copy_workflow(tmp_path / "wf")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import sys, time\n"
        "argv = sys.orig_argv\n"
        "if 'workflow_scripts.job' in argv and any('\"data.ingest_bars\"' in a for a in argv):\n"
        "    print('test hook: ingest sleeps 0.6 s', file=sys.stderr, flush=True)\n"
        "    time.sleep(0.6)\n"
    )
    pythonpath = os.pathsep.join(p for p in (str(hooks), slurm.env.get("PYTHONPATH", "")) if p)
    r, seconds = slurm_snakemake(
        slurm,
        wf / "Snakefile",
        wf,
        "results/features/BTCUSDT.parquet",
        "results/config/resolved.yaml",
        "--retries",
        "20",
        "--config",
        "env=integration-test",
        "universe=tiny",
        "targets=small",
        'overrides=["+env.compute.runtime_minutes.ingest_bars=1",'
        + ",".join(
            f'"+env.compute.runtime_minutes.{rule}=600"'
            for rule in ("write_resolved_config", "build_features", "add_cross_coin_features")
        )
        + "]",
        env={"SWINGFLOW_TIMEOUT_UNIT_S": "0.5", "SWINGFLOW_TIMEOUT_GRACE_S": "1", "PYTHONPATH": pythonpath},
        timeout=1200,
    )
    TIMINGS["real workflow, features of one coin (s)"] = round(seconds, 1)
    assert r.returncode == 0, r.stderr[-6000:]
    for f in (
        "results/features/BTCUSDT.parquet",
        "results/features/base/ETHUSDT.parquet",
        "results/ingest/ETHUSDT.quality.json",
        "results/config/resolved.yaml",
    ):
        assert (wf / f).stat().st_size > 0, f

    jobs = submitted_jobs(r.stderr)
    assert set(jobs) == {
        "write_resolved_config",
        "ingest_bars",
        "build_features",
        "add_cross_coin_features",
    }, jobs
    assert len(jobs["build_features"]) == 2 and len(jobs["add_cross_coin_features"]) == 1
    logs, ctld = slurm_job_logs(wf), slurm.ctld_log()
    every = [j for ids in jobs.values() for j in ids]
    assert set(every) <= set(logs), (every, sorted(logs))
    assert all(re.search(rf"JobId={jid}\b", ctld) for jid in every)
    TIMINGS["real workflow Slurm jobs"] = len(every)

    # ingest: per coin, the attempts' Slurm jobs in order, read from their own Slurm logs (slurmctld forgets
    # jobs after MinJobAge): runtime 1, 2, 3, ... (the plugin's `-t`), each stopped by the guard (exit 124)
    # but the last
    for symbol in ("BTCUSDT", "ETHUSDT"):
        mine = [
            wf / ".snakemake/slurm_logs/rule_ingest_bars" / symbol / f"{j}.log"
            for j in jobs["ingest_bars"]
            if (wf / ".snakemake/slurm_logs/rule_ingest_bars" / symbol / f"{j}.log").exists()
        ]
        texts = [p.read_text(errors="replace") for p in mine]
        runtimes = [
            int(re.search(r"^    resources: .*?\bruntime=(\d+)\b", t, flags=re.MULTILINE)[1]) for t in texts
        ]
        assert len(mine) >= 2 and runtimes == list(range(1, len(mine) + 1)), (symbol, runtimes)
        assert all("returned non-zero exit status 124" in t for t in texts[:-1]), symbol
        assert "exit status 124" not in texts[-1] and "Finished jobid" in texts[-1], texts[-1][-2000:]
        assert "test hook: ingest sleeps 0.6 s" in (wf / f"logs/ingest/{symbol}.log").read_text()
        TIMINGS[f"ingest {symbol} attempts on Slurm"] = len(mine)


def test_slurm_stops_a_job_past_its_runtime_and_the_retry_gets_a_longer_one(slurm, tmp_path):
    # Attempt 1 asks -t 1 (minute) and sleeps 75 s: Slurm kills it (TIMEOUT); attempt 2 asks -t 2 and
    # finishes.
    r, seconds = slurm_snakemake(slurm, FIXTURES / "slurm" / "Snakefile.timeout", tmp_path, timeout=480)
    TIMINGS["slurm timeout + retry (s)"] = round(seconds, 1)
    assert r.returncode == 0, r.stderr[-4000:]
    first, second = re.findall(r"job=(\d+)", (tmp_path / "attempts.txt").read_text())
    one, two = slurm.scontrol_job(first), slurm.scontrol_job(second)
    assert "JobState=TIMEOUT" in one and "TimeLimit=00:01:00" in one, one
    assert "JobState=COMPLETED" in two and "TimeLimit=00:02:00" in two, two
    assert (tmp_path / "overrun.txt").read_text() == "done\n"


def test_the_script_refuses_bad_usage():
    r = subprocess.run(
        ["bash", str(SCRIPT), "bogus"], capture_output=True, check=False, text=True, timeout=30
    )
    assert r.returncode == 2 and "usage" in r.stderr
    assert shutil.which("bash")
