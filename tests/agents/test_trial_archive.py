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

VALUES = (0.4, 0.1, 0.3, -0.2, 0.25, 0.05, 0.0, 0.2, 0.15, 0.35, 0.12, 0.01)


def _models_root(tmp_path, values=VALUES, symbol="BTCUSDT"):
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
            root / symbol / t["code"],
            kind="ppo",
            model=b"policy bytes " + symbol.encode() + t["code"].encode(),
            config={"symbol": symbol, "window": 5},
            metrics={"vin": f"{t['code']}.{symbol}"},
            costs={},
            features=["cnn_lstm_0@t-0", "position"],
            segments={"train": [0, 10]},
            training_log={},
        )
    artifacts.write_json(
        root / symbol / package.TRIALS_FILE,
        {"symbol": symbol, "archive_top_percent": 20, "trials": trials},
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
    assert sorted(registry) == sorted(f"{t['code']}.BTCUSDT" for t in planned)
    for t in planned:
        key = f"{t['code']}.BTCUSDT"
        verify_folder(archive / key / "model")
        assert artifacts.read_json(archive / key / "hyperparams.json") == {"net_width": 64}
        assert artifacts.read_json(archive / key / "metadata.json")["value"] == t["value"]
        assert registry[key]["code"] == t["code"] and registry[key]["symbol"] == "BTCUSDT"


def test_two_symbols_trials_with_the_same_code_neither_collide_nor_evict_each_other(tmp_path, capsys):
    """The same trial codes from two symbols' studies (a code names a configuration, not a coin): each is
    archived under `<code>.<SYMBOL>` with its own model; archiving again and cleaning up keep both apart."""
    root = _models_root(tmp_path)
    _models_root(tmp_path, values=tuple(v / 2 for v in VALUES), symbol="ETHUSDT")
    archive = tmp_path / "trial_archive"
    done = _cli(capsys, "archive", "--agent-models", str(root), "--dir", str(archive))
    assert [(t["symbol"], t["value"]) for t in done] == [
        ("BTCUSDT", 0.4),
        ("BTCUSDT", 0.35),
        ("ETHUSDT", 0.2),
        ("ETHUSDT", 0.175),
    ]
    assert {t["code"] for t in done if t["symbol"] == "BTCUSDT"} == {
        t["code"] for t in done if t["symbol"] == "ETHUSDT"
    }  # the same codes: the old archive kept the first symbol's and skipped the second's
    registry = artifacts.read_json(archive / trial_archive.REGISTRY_FILE)["trials"]
    assert len(registry) == 4
    for t in done:
        model = archive / f"{t['code']}.{t['symbol']}" / "model"
        verify_folder(model)
        assert (model / "policy.pt").read_bytes() == b"policy bytes " + (t["symbol"] + t["code"]).encode()
        assert artifacts.read_json(model.parent / "metadata.json")["symbol"] == t["symbol"]
    before = (archive / trial_archive.REGISTRY_FILE).read_bytes()
    _cli(capsys, "archive", "--agent-models", str(root), "--dir", str(archive))  # a no-op
    assert (archive / trial_archive.REGISTRY_FILE).read_bytes() == before
    # cleanup ranks across symbols by validation value: keeping the best two removes ETHUSDT's only
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).isoformat()
    trials = artifacts.read_json(archive / trial_archive.REGISTRY_FILE)
    for e in trials["trials"].values():
        e["archived"] = old
    artifacts.write_json(archive / trial_archive.REGISTRY_FILE, trials)
    removed = _cli(capsys, "cleanup", "--agent-trials", str(archive), "--keep-top", "2")["trials"]
    assert sorted(removed) == sorted(f"{t['code']}.ETHUSDT" for t in done if t["symbol"] == "ETHUSDT")
    assert all((archive / f"{t['code']}.BTCUSDT").is_dir() for t in done if t["symbol"] == "BTCUSDT")


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
    assert not any((archive / key).exists() for key in done["trials"])
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
