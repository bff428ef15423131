"""The job process as the rules run it (`python -m workflow_scripts.job MANIFEST`): it ends through
`exit_now` (exit handlers, then os._exit without the interpreter's teardown), so its exit code, its last log
lines and its outputs must come through whole."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from tests.ops.helpers import ROOT, run_env
from workflow_scripts.job import CPU_LINE


def run_job(manifest: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workflow_scripts.job", json.dumps(manifest)],
        cwd=ROOT,
        env=run_env(),
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )


def split_manifest(tmp_path, horizon: int) -> dict:
    bars = tmp_path / "APEUSDT.parquet"
    hours = pd.date_range("2022-01-01", periods=1000, freq="h", tz="UTC")
    pd.DataFrame({"timestamp": hours}).to_parquet(bars)
    spec = {"horizon": horizon, "train_frac": 0.6, "validation_frac": 0.2, "embargo_bars": 24}
    return {
        "entry": "data.split_segments",
        "input": {"bars": str(bars)},
        "output": {"split": str(tmp_path / "w200.json")},
        "params": {"spec": spec},
        "wildcards": {"symbol": "APEUSDT", "window": "200"},
        "threads": 1,
    }


def test_a_finished_job_exits_0_with_its_output_whole_and_its_cpu_line_last(tmp_path):
    r = run_job(split_manifest(tmp_path, horizon=50))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "w200.json").read_text())["bars"] == 1000
    last = r.stderr.strip().splitlines()[-1]
    assert CPU_LINE.fullmatch(last) and last.startswith("swingflow job data.split_segments: cpu "), r.stderr


def test_a_refused_job_exits_1_with_its_message_flushed_and_no_output(tmp_path):
    r = run_job(split_manifest(tmp_path, horizon=200))
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        f"swingflow error: {tmp_path / 'APEUSDT.parquet'}: APEUSDT is too short for this window: 1000 bars, "
        "at least 1123 needed for a label horizon of 200 bars, embargo 24 and fractions 0.6/0.2/0.2 (the "
        "validation segment [624, 800) would hold no complete label); window 200 is not trainable"
    )
    assert "ERROR swingflow:" in r.stderr  # the logging handler's line, flushed by the exit handlers
    assert not (tmp_path / "w200.json").exists()
