"""Seed 004's agent trial archive through the existing `swingflow archive` / `cleanup` commands: the top % of
each symbol's trials by validation value, copied as verified model folders with a trial registry; dry runs
change nothing; cleanup keeps the best and the recent."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from workflow_scripts import artifacts
from workflow_scripts.agents import package, trial_archive
from workflow_scripts.models.folder import verify_folder
from workflow_scripts.ops.cli import main


def _models_root(tmp_path, values=(0.4, 0.1, 0.3, -0.2, 0.25, 0.05, 0.0, 0.2, 0.15, 0.35, 0.12, 0.01)):
    """results/agents/models/<SYMBOL>/ with trials.json and a model folder for the top 20 % of trials."""
    root = tmp_path / "models"
    trials = [
        {
            "number": i,
            "code": f"PPO-C-N64B64-L3E4G99-LB1TD0-20260214-{i:06X}",
            "kind": "ppo",
            "value": v,
            "scored": True,
            "params": {"net_width": 64},
            "validation": {"grade": "C", "sharpe_per_trade": v},
            "folder": None,
        }
        for i, v in enumerate(values)
    ]
    for t in package.top_trials(trials, 20):
        t = next(x for x in trials if x["code"] == t["code"])
        t["folder"] = t["code"]
        package.write_model_folder(
            root / "BTCUSDT" / t["code"],
            kind="ppo",
            model=b"policy bytes " + t["code"].encode(),
            config={"symbol": "BTCUSDT", "window": 5},
            metrics={"vin": t["code"]},
            costs={},
            features=["cnn_lstm_0@t-0", "position"],
            segments={"train": [0, 10]},
            training_log={},
        )
    artifacts.write_json(
        root / "BTCUSDT" / package.TRIALS_FILE,
        {"symbol": "BTCUSDT", "archive_top_percent": 20, "trials": trials},
    )
    return root


def _cli(capsys, *argv):
    assert main(["--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_top_ten_percent_is_archived_with_a_registry_and_dry_run_writes_nothing(tmp_path, capsys):
    root, archive = _models_root(tmp_path), tmp_path / "trial_archive"
    planned = _cli(capsys, "archive", "--agent-models", str(root), "--dir", str(archive), "--dry-run")
    assert [t["value"] for t in planned] == [0.4, 0.35]  # ceil(10 % of 12) = 2, best validation first
    assert not archive.exists()
    done = _cli(capsys, "archive", "--agent-models", str(root), "--dir", str(archive))
    assert [t["code"] for t in done] == [t["code"] for t in planned]
    registry = artifacts.read_json(archive / trial_archive.REGISTRY_FILE)["trials"]
    assert sorted(registry) == sorted(t["code"] for t in planned)
    for t in planned:
        verify_folder(archive / t["code"] / "model")
        assert artifacts.read_json(archive / t["code"] / "hyperparams.json") == {"net_width": 64}
        assert artifacts.read_json(archive / t["code"] / "metadata.json")["value"] == t["value"]


def test_a_top_trial_without_a_model_folder_is_refused(tmp_path, capsys):
    root = _models_root(tmp_path)
    with pytest.raises(
        ValueError, match=r"is in the top 50.0 % but has no model folder; .* >= 50.0 \(it is 20\)"
    ):
        trial_archive.archive_trials(root, tmp_path / "a", 50.0)


def test_cleanup_keeps_the_best_and_the_recent_and_dry_run_keeps_all(tmp_path, capsys):
    root, archive = _models_root(tmp_path), tmp_path / "trial_archive"
    old = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    chosen = trial_archive.archive_trials(root, archive, 20.0, now=old)  # 3 trials
    assert [t["value"] for t in chosen] == [0.4, 0.35, 0.3]
    logs = tmp_path / "logs"
    (logs / "agents").mkdir(parents=True)
    log = logs / "agents" / "old.log"
    log.write_text("x")
    month_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).timestamp()
    os.utime(log, (month_ago, month_ago))
    (logs / "agents" / "new.log").write_text("x")
    args = ["cleanup", "--agent-trials", str(archive), "--keep-top", "1", "--logs", str(logs)]
    planned = _cli(capsys, *args, "--keep-days", "7", "--dry-run")
    assert planned["dry_run"] and len(planned["trials"]) == 2 and planned["logs"] == [str(log)]
    assert log.exists()
    assert len(artifacts.read_json(archive / trial_archive.REGISTRY_FILE)["trials"]) == 3
    done = _cli(capsys, *args, "--keep-days", "7")
    assert done["trials"] == planned["trials"]
    assert not log.exists() and (logs / "agents" / "new.log").exists()
    registry = artifacts.read_json(archive / trial_archive.REGISTRY_FILE)["trials"]
    assert [e["value"] for e in registry.values()] == [0.4]
    assert not any((archive / code).exists() for code in done["trials"])
    recent = trial_archive.cleanup_trials(archive, keep_top=0, keep_days=3650, dry_run=True)
    assert recent["trials"] == []  # archived less than ten years ago


def test_swingflow_vin_decode_reads_agent_trial_codes(capsys):
    fields = _cli(capsys, "vin", "decode", "PPO-A-N1024B4K-L2E6G98-LB5TD20-20260214")
    assert fields == {
        "type": "PPO",
        "grade": "A",
        "net_width": 1024,
        "batch_size": 4000,
        "learning_rate": 2e-06,
        "gamma": 0.98,
        "lookback": 5,
        "time_decay": 0.2,
        "date": "20260214",
    }
    assert main(["vin", "decode", "PPO-A-N1024B4K"]) == 1
    assert "expected TYPE-GRADE-ARCH-OPT-ENV-DATE" in capsys.readouterr().err
