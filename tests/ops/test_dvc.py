"""DVC round trip through both remotes: the tiny run's results and registry are committed to DVC (dvc.yaml's
stage), pushed to the local directory remote and to S3 (moto's server on loopback, started and stopped here),
then a fresh `git clone` pulls them, `snakemake --touch` settles the file times DVC does not keep, and
`snakemake -n` plans nothing."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.ops.conftest import TINY_RUN
from tests.ops.helpers import BIN, ROOT, run_env, run_snakemake

pytestmark = pytest.mark.slow
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def sh(cwd: Path, *cmd: str, env: dict | None = None) -> str:
    r = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env=run_env(**S3_ENV, **(env or {})),
    )
    assert r.returncode == 0, f"{cmd}: {r.stdout[-2000:]}{r.stderr[-3000:]}"
    return r.stdout + r.stderr


def git(cwd: Path, *args: str) -> str:
    return sh(
        cwd,
        "git",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.invalid",
        "-c",
        "commit.gpgsign=false",
        *args,
    )


def dvc(cwd: Path, *args: str) -> str:
    return sh(cwd, str(BIN / "dvc"), *args)


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on a free loopback port, with the bucket the s3 remote names (.dvc/config)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=run_env(**S3_ENV),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import boto3

        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        boto3.client(
            "s3",
            endpoint_url=url,
            **{k.lower(): v for k, v in S3_ENV.items() if k != "AWS_DEFAULT_REGION"},
            region_name="us-east-1",
        ).create_bucket(Bucket="swingflow-dvc")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for d in ("results", "registry")
        for p in sorted((root / d).rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def pushed_repo(tiny_run, tmp_path_factory, s3_endpoint) -> Path:
    """A git repository holding the workflow and the tiny run's outputs, committed to DVC and pushed to both
    remotes."""
    repo = tmp_path_factory.mktemp("dvc") / "repo"
    shutil.copytree(
        tiny_run.workdir, repo, ignore=shutil.ignore_patterns(".snakemake", "logs", "__pycache__")
    )
    for name in (".gitignore", ".dvcignore", "dvc.yaml"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(
        ROOT / ".dvc", repo / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache", "config.local")
    )
    git(repo, "init", "-q")
    dvc(repo, "remote", "modify", "--local", "s3", "endpointurl", s3_endpoint)
    dvc(repo, "commit", "-f", "swingflow")  # record the run's outs in dvc.lock (what `dvc repro` would do)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "run")
    dvc(repo, "push", "-r", "local")
    dvc(repo, "push", "-r", "s3")
    return repo


@pytest.mark.parametrize("remote", ["local", "s3"])
def test_a_fresh_clone_pulls_everything_and_plans_nothing(pushed_repo, tmp_path, s3_endpoint, remote):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(pushed_repo), str(clone))
    assert not (clone / "results").exists()
    if remote == "local":  # the local remote is a folder next to the original checkout: point the clone at it
        dvc(clone, "remote", "modify", "--local", "local", "url", str(pushed_repo / "dvc-storage"))
    else:
        dvc(clone, "remote", "modify", "--local", "s3", "endpointurl", s3_endpoint)
    dvc(clone, "pull", "-r", remote)
    assert snapshot(clone) == snapshot(pushed_repo)  # byte for byte: features, models, registry, reports

    touched = run_snakemake(["--touch", "-c1", "--config", *TINY_RUN], cwd=clone, env=run_env(), timeout=600)
    assert touched.returncode == 0, touched.stderr[-3000:]
    plan = run_snakemake(["-n", "--config", *TINY_RUN], cwd=clone, timeout=600)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "Nothing to be done" in plan.stdout + plan.stderr, (plan.stdout + plan.stderr)[-3000:]
