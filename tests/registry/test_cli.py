"""Every `swingflow` command on a small real registry (LightGBM models on a slice of BTCUSDT)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.registry.conftest import SYMBOL, TRAIN
from workflow_scripts import artifacts
from workflow_scripts.ops.cli import main
from workflow_scripts.registry import store as reg

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(capsys, reg_dir):
    """run(*args) -> (exit code, stdout, stderr) with --registry pointing at the test registry."""

    def run(*args, registry=True):
        argv = (["--registry", str(reg_dir)] if registry else []) + [str(a) for a in args]
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def small(factory, reg_dir, tmp_path):
    """Three models (two high, one low), champions for both sides, and scoring data with a label column."""
    a = reg.register(
        reg_dir, factory.folder(side="high", num_leaves=3, rounds=5, score=0.41, grade="B"), run="r1"
    )
    b = reg.register(reg_dir, factory.folder(side="high", num_leaves=15, rounds=30, score=0.52), run="r1")
    c = reg.register(reg_dir, factory.folder(side="low", score=0.47), run="r1")
    reg.promote(reg_dir, a["vin"], run="r1")
    reg.promote(reg_dir, c["vin"], run="r1")
    data = factory.features.iloc[TRAIN:].copy()
    data["label"] = factory.labels[TRAIN:]
    path = tmp_path / "recent.parquet"
    data.to_parquet(path)
    return {"a": a["vin"], "b": b["vin"], "c": c["vin"], "data": path}


def test_registry_list_and_filters(cli, small):
    code, out, _ = cli("registry", "list")
    assert code == 0 and all(small[k] in out for k in "abc") and "1.0.0" in out and "1.1.0" in out
    code, out, _ = cli("registry", "list", "--grade", "B", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["vin"] for r in rows] == [small["a"]]
    code, out, _ = cli(
        "registry",
        "list",
        "--side",
        "low",
        "--symbol",
        SYMBOL,
        "--model-type",
        "lightgbm",
        "--target",
        "low_breakout_k1.5_th0.5",
        "--json",
    )
    assert [r["vin"] for r in json.loads(out)] == [small["c"]]
    code, out, _ = cli("--json", "registry", "list", "--grade", "S")
    assert json.loads(out) == []


def test_registry_info_and_verify(cli, small, reg_dir):
    code, out, _ = cli("registry", "info", small["b"], "--json")
    info = json.loads(out)
    assert code == 0 and info["version"] == "1.1.0" and info["dependencies"]["data_version"] == "d" * 64
    code, out, _ = cli("registry", "info", small["b"])
    assert code == 0 and "version_reason" in out
    code, out, _ = cli("registry", "verify")
    assert code == 0 and "0 bad" in out
    (reg_dir / "models" / small["b"] / "costs.json").write_text("{}\n")
    code, out, _ = cli("registry", "verify", "--json")
    bad = [r for r in json.loads(out) if not r["ok"]]
    assert code == 1 and [r["vin"] for r in bad] == [small["b"]] and "costs.json" in bad[0]["error"]


def test_register_promote_benchmark_summary(cli, small, factory, reg_dir):
    folder = factory.folder(side="high", num_leaves=31, rounds=40, score=0.6)
    code, out, _ = cli(
        "registry",
        "register",
        str(folder),
        "--run",
        "r2",
        "--promote",
        "--data",
        small["data"],
        "--margin",
        "5",
        "--json",
    )
    res = json.loads(out)
    assert code == 0 and res["version"] == "1.2.0" and res["promotion"]["decision"] == "challenger"
    code, out, _ = cli("registry", "promote", res["vin"], "--data", small["data"], "--margin", "-1", "--json")
    assert code == 0 and json.loads(out)["decision"] == "champion"
    code, out, _ = cli("registry", "benchmark", small["a"], small["b"], res["vin"], "--data", small["data"])
    assert code == 0 and all(v in out for v in (small["a"], small["b"], res["vin"])) and "macro_ap" in out
    code, out, _ = cli("registry", "summary", "r1", "--json")
    assert code == 0 and json.loads(out)["models_registered"] == 3
    assert (reg_dir / "summary" / "r1" / "engine_summary.json").is_file()
    assert (reg_dir / "runs" / "r2" / "status.json").is_file()


def test_champions_and_rollback(cli, small, reg_dir):
    code, out, _ = cli("champions")
    assert code == 0 and small["a"] in out and small["c"] in out
    reg.promote(reg_dir, small["b"], scores={small["a"]: 0.1, small["b"]: 0.9})
    code, out, _ = cli("champions", "--json")
    assert {r["vin"] for r in json.loads(out)} == {small["b"], small["c"]}
    code, out, err = cli("rollback", SYMBOL)
    assert code == 1 and "--side" in err and len(err.strip().splitlines()) == 1
    code, out, _ = cli("rollback", SYMBOL, "--side", "high", "--json")
    assert code == 0 and json.loads(out)["champion"] == small["a"]
    code, out, err = cli("rollback", SYMBOL, "--side", "high")
    assert code == 1 and "no previous champion" in err and "Traceback" not in err


def test_archive_cleanup_deploy(cli, small, reg_dir):
    code, out, _ = cli("archive", "--top-percent", "50", "--dry-run", "--json")
    assert code == 0 and len(json.loads(out)) == 2 and not (reg_dir / "archive").exists()
    code, out, _ = cli("archive", "--top-percent", "10")
    assert (
        code == 0 and "Archived 1" in out and (reg_dir / "archive" / small["b"] / "metadata.json").is_file()
    )
    before = sorted(reg_dir.rglob("*"))
    code, out, _ = cli("cleanup", "--keep-days", "0", "--keep-top", "0", "--dry-run")
    assert code == 0 and "Would remove 0 model" in out  # champions a, c and archived b are protected
    assert sorted(reg_dir.rglob("*")) == before
    code, out, _ = cli("deploy", "--slot", "0")
    assert code == 0 and small["c"] in out  # best champion: c (0.47) beats a (0.41)
    code, out, _ = cli("deploy", "--slot", "1", small["a"], "--json")
    assert json.loads(out)["vin"] == small["a"]
    info = artifacts.read_json(reg_dir / "deployments" / "model_1" / "deployment_info.json")
    assert info["slot"] == 1 and (reg_dir / "deployments" / "model_1" / "model.txt").is_file()


def test_dashboard_once(cli, small, reg_dir, tmp_path):
    results = tmp_path / "results"
    artifacts.write_json(
        results / "config" / "resolved.json",
        {
            "universe": {"symbols": ["BTCUSDT", "ETHUSDT"]},
            "targets": {
                "windows": [5, 20],
                "types": ["high_breakout", "low_breakout"],
                "std_thresholds": [1.5],
                "barrier_thresholds": [0.5, 1.0],
            },
        },
    )
    for t in ("high_breakout_k1.5_th0.5", "low_breakout_k1.5_th1.0", "high_breakout_k1.5_th1.0"):
        artifacts.write_json(results / "stage1" / "BTCUSDT" / "w5" / t / "metrics.json", {})
    artifacts.write_json(results / "tuning" / "stage2" / "w5.json", {})
    artifacts.write_json(results / "tuning" / "stage4" / "BTCUSDT" / "w5" / "high.json", {})
    (results / "production" / "BTCUSDT" / "w5" / "low").mkdir(parents=True)  # a job still writing: not done
    artifacts.write_text(results / "production" / "BTCUSDT" / "w5" / "high" / "sha256.txt", "")
    artifacts.write_json(
        results / "registry" / "run_status.json",
        {
            "run": "run-0123456789ab",
            "symbols": {
                "BTCUSDT": {"registered": [small["a"]], "champion": {"high": small["a"]}, "changed": True}
            },
        },
    )
    reg.deploy(reg_dir, 0, small["a"])
    code, out, _ = cli("dashboard", "--once", "--results", results)
    assert code == 0 and "Workflow progress" in out and "Champions" in out and "Deployed slots" in out
    assert small["a"] in out and "last registry run run-0123456789ab" in out and "changed: BTCUSDT" in out
    code, out, _ = cli("dashboard", "--once", "--results", results, "--json")
    snap = json.loads(out)
    progress = {r["stage"]: (r["done"], r["expected"]) for r in snap["progress"]}
    assert progress["stage1"] == (3, 2 * 2 * 4) and progress["evaluation"] == (0, 2 * 2 * 4)
    assert progress["tuning stage 2"] == (1, 2) and progress["tuning stage 3"] == (0, 2 * 2 * 2)
    assert progress["tuning stage 4"] == (1, 8) and progress["production"] == (1, 8)
    assert progress["registry"] == (1, 1) and progress["predictions"] == (0, 2)
    assert snap["last_run"]["symbols"]["BTCUSDT"]["changed"] is True
    assert snap["deployed"][0]["vin"] == small["a"] and len(snap["champions"]) == 2


def test_predict_batch(cli, small, factory, tmp_path, reg_dir):
    feats = tmp_path / "features"
    feats.mkdir()
    factory.features.to_parquet(feats / f"{SYMBOL}.parquet")
    code, out, _ = cli("predict", "--features", feats, "--json")
    rows = json.loads(out)
    assert code == 0 and rows[0]["rows"] == 2 * len(factory.features)
    preds = pd.read_parquet(reg_dir / "predictions" / f"{SYMBOL}.parquet")
    assert list(preds.columns) == ["timestamp", "vin", "side", "p_neither", "p_breakout", "p_reversion"]


def test_predict_append(cli, factory, reg_dir, tmp_path):
    pytest.importorskip(
        "workflow_scripts.features", reason="features helper writes workflow_scripts/features/"
    )
    e = reg.register(reg_dir, factory.folder(real=True))
    reg.promote(reg_dir, e["vin"])
    bars = tmp_path / "ingest"
    bars.mkdir()
    for s, b in factory.bars_by_symbol.items():
        b.iloc[:-5].to_parquet(bars / f"{s}.parquet")
    out_dir = tmp_path / "preds"
    code, out, _ = cli(
        "predict", "--append", "--bars", bars, "--out", out_dir, "--history-bars", 300, "--json"
    )
    assert code == 0 and json.loads(out)[0]["rows_added"] == len(factory.bars) - 5
    for s, b in factory.bars_by_symbol.items():
        b.to_parquet(bars / f"{s}.parquet")
    code, out, _ = cli("predict", "--append", "--bars", bars, "--out", out_dir, "--json")
    assert json.loads(out)[0]["rows_added"] == 5
    code, out, _ = cli("predict", "--append", "--bars", bars, "--out", out_dir)
    assert code == 0 and "rows_added" in out and " 0 " in out


def test_vin_decode(cli, small):
    code, out, _ = cli("vin", "decode", small["a"], "--json")
    dec = json.loads(out)
    assert code == 0 and dec["type"] == "LGBM" and dec["grade"] == "B" and dec["env"]["side"] == "high"
    code, out, err = cli("vin", "decode", "NOT-A-VIN")
    assert code == 1 and err.startswith("swingflow: error:")


def test_errors_are_one_line(cli, reg_dir, tmp_path):
    code, _, err = cli("registry", "info", "LGBM-NOPE")
    assert code == 1 and "no model" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("registry", "benchmark", "X", "--data", tmp_path / "missing.parquet")
    assert code == 1 and "missing.parquet" in err
    code, _, err = cli("deploy")  # --slot is required: usage error
    assert code == 2
    code, _, err = cli("rollback", "btc/../x")
    assert code == 1 and "bad symbol" in err


def test_registry_from_env_and_console_entry(tmp_path, factory):
    env = dict(os.environ, SWINGFLOW_REGISTRY=str(tmp_path / "envreg"), PYTHONPATH=str(ROOT))
    reg.register(tmp_path / "envreg", factory.folder())
    p = subprocess.run(
        [sys.executable, "-m", "workflow_scripts.ops.cli", "registry", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert p.returncode == 0 and len(json.loads(p.stdout)) == 1
    p = subprocess.run(
        [sys.executable, "-m", "workflow_scripts.ops.cli", "registry", "info", "NOPE"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
