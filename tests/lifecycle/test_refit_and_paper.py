"""Refit for deployment and paper trading (docs/LIFECYCLE.md, issue 14 items 3 and 4), on real BTCUSDT bars:
a production folder written exactly as evaluate_production writes it, registered, made champion, deployed,
then paper-traded on bars appended after its data end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT
from workflow_scripts import artifacts
from workflow_scripts.config.schema import config_group
from workflow_scripts.data.splits import chronological_split
from workflow_scripts.evaluation.vin import decode_vin
from workflow_scripts.features import build_features
from workflow_scripts.lifecycle import paper
from workflow_scripts.models import folder as contract
from workflow_scripts.registry import paper_trading as pt
from workflow_scripts.registry import predictions as pr
from workflow_scripts.registry import store as reg
from workflow_scripts.targets.grammar import horizon_bars, target_grid
from workflow_scripts.targets.swing_targets import build_targets
from workflow_scripts.training import production
from workflow_scripts.training.combination import build_combination

WINDOW = 5
SYMBOL = "BTCUSDT"
TARGETS_CFG = {
    "types": ["high_breakout", "high_reversion"],
    "std_thresholds": [1.0],
    "barrier_thresholds": [0.5],
    "horizon_multiplier": 1,
    "sigma_min_bars": 24,
    "windows": [WINDOW],
}
TARGET = "high_breakout_k1.0_th0.5"
FEATURES = {"families": ["candle", "tech", "vol"], "lookbacks": [5, 21], "lags": [], "dtype": "float32"}
TRAIN_BARS = 3000  # the data the model is trained on; the next bars are "live"
COSTS = {
    "symbol": SYMBOL,
    "taker_fee_bps": 10.0,
    "maker_fee_bps": 2.0,
    "half_spread_bps": 0.5,
    "entry_order": "taker",
    "exit_order": "taker",
    "slippage": {"base_bps": 1.0, "max_bps": 25.0, "model": "volatility", "vol_coef": 0.05},
    "source": "test",
    "units": "bps of notional per side",
    "version": 1,
}


def load(group):
    return yaml.safe_load((ROOT / f"config/{group}.yaml").read_text())


def produce(folder, bars, kind="lightgbm"):
    features = build_features(bars, dict(FEATURES))
    horizon = horizon_bars(WINDOW, TARGETS_CFG)
    targets = build_targets(bars, WINDOW, target_grid(TARGETS_CFG), horizon, 24)
    split = chronological_split(bars["timestamp"], horizon, 0.6, 0.2, 24)
    names = [c for c in features.columns if c != "timestamp"][:40]
    choice = {
        "symbol": SYMBOL,
        "window": WINDOW,
        "side": "high",
        "best": {"target": TARGET},
        "variants_ranked": [{"target": TARGET, "status": "trained", "sharpe_per_trade": 0.1}],
    }
    comb = build_combination(choice, features, names, targets, split)
    tuned = {"num_leaves": 15, "max_depth": 5, "min_child_samples_frac": 0.01, "learning_rate": 0.1}
    stage = {
        "symbol": SYMBOL,
        "window": WINDOW,
        "side": "high",
        "best_params": tuned,
        "best_value": 0.4,
        "study_name": "s",
        "finished_trials": 2,
    }
    tuning = {"stage2": dict(stage, finished_trials=1), "stage3": stage, "stage4": stage}
    spec = {
        "model": load(f"model/{kind}"),
        "targets": TARGETS_CFG,
        # a low grid: the small test model must trade for the paper ledger to have trades
        "evaluation": load("evaluation/default")
        | {"threshold_grid": [0.2, 0.25, 0.3], "threshold_min_trades": 3},
        "gates": load("gates/exploratory"),
        "grades": load("grades/default"),
        "features": FEATURES,
        "universe": [SYMBOL],
        "encoder": load("encoder/none"),
    }
    trained, evaluation = production.produce(
        folder,
        comb,
        tuned,
        tuning,
        production.dsr_trials(choice, tuning),
        bars["close"].to_numpy(),
        COSTS,
        spec,
        data_version="d" * 64,
        data_end=bars["timestamp"].iloc[-1].isoformat(),
    )
    return comb, trained, features


@pytest.fixture(scope="module")
def world(btc_bars, tmp_path_factory):
    root = tmp_path_factory.mktemp("lifecycle")
    bars = btc_bars.iloc[-(TRAIN_BARS + 1200) :].reset_index(drop=True)
    folder = root / "production"
    comb, trained, features = produce(folder, bars.iloc[:TRAIN_BARS].reset_index(drop=True))
    registry = root / "registry"
    vin = reg.register(registry, folder, run="r1")["vin"]
    with pytest.MonkeyPatch.context() as mp:  # champion whatever its gate: the gate is not under test here
        mp.setattr(reg, "eligibility", lambda entry: (True, "strict", "test"), raising=False)
        assert reg.promote(registry, vin, run="r1")["decision"] == "champion"
    return {
        "root": root,
        "bars": bars,
        "folder": folder,
        "comb": comb,
        "trained": trained,
        "features": features,
        "registry": registry,
        "vin": vin,
    }


def test_refit_rounds_rule():
    assert production.refit_rounds(100, 1670, 1000, cap=1000) == 167
    assert production.refit_rounds(900, 2000, 1000, cap=1000) == 1000  # capped
    assert production.refit_rounds(0, 10, 1000, cap=1000) == 1  # at least one round
    assert production.refit_rounds(12, 1670, 1000, cap=50, scaled=False) == 12  # torch epochs: unscaled


def test_refit_trains_through_the_last_usable_bar(world):
    folder, comb = world["folder"], world["comb"]
    contract.verify_folder(folder)
    doc = artifacts.read_json(folder / "refit" / "refit.json")
    n, horizon = TRAIN_BARS, horizon_bars(WINDOW, TARGETS_CFG)
    span = doc["span"]
    # within one label horizon of the data end, and no label past it
    assert n - 1 - horizon <= span["last_label_pos"] <= n - 1
    assert (n - 1) - span["last_pos"] <= horizon and span["last_pos"] + horizon <= n - 1
    assert span["last_row_pos"] <= span["last_pos"]
    assert span["last_pos"] > comb.split["test"]["lo"] and span["first_pos"] == comb.rows["train"].min()
    # the evaluated model: training segment only; its span is in metrics.json
    metrics = artifacts.read_json(folder / "metrics.json")
    assert metrics["training_span"]["last_pos"] < comb.split["validation"]["lo"]
    assert metrics["deployed_model"] == "refit" and metrics["replay"]["horizon"] == horizon
    # the rounds rule, and the refit booster has exactly that many rounds
    best = world["trained"].model.best_iteration
    assert doc["best_iteration"] == best and doc["rows"]["train"] == len(comb.rows["train"])
    assert doc["rows"]["refit"] == len(production.refit_rows(comb)) > len(comb.rows["train"])
    assert doc["rounds"] == production.refit_rounds(best, doc["rows"]["refit"], doc["rows"]["train"], 1000)
    booster = lgb.Booster(model_file=str(folder / "refit" / "model.txt"))
    assert booster.num_trees() == 3 * doc["rounds"]
    assert doc["model_sha256"] == artifacts.sha256_file(folder / "refit" / "model.txt")
    # VIN date = last training bar of the refit
    assert decode_vin(metrics["vin"])["date"] == pd.Timestamp(span["last_bar"]).strftime("%Y%m%d")


def test_refit_is_covered_by_the_folder_contract(world, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(world["folder"], bad)
    with open(bad / "refit" / "model.txt", "a") as fh:
        fh.write("\n")
    with pytest.raises(contract.IntegrityError, match="refit/model.txt"):
        contract.verify_folder(bad)
    shutil.rmtree(bad)
    shutil.copytree(world["folder"], bad)
    (bad / "refit" / "refit.json").unlink()
    with pytest.raises(contract.IntegrityError, match="refit/refit.json"):
        contract.verify_folder(bad)


def test_predictions_use_the_refit_model(world):
    registry, vin, features = world["registry"], world["vin"], world["features"]
    deployed = reg.load_model(registry, vin, model="deployed")
    evaluated = reg.load_model(registry, vin)
    assert (deployed.source, evaluated.source) == ("refit", "evaluated")
    preds = pr.batch_predictions(registry, SYMBOL, features)
    want = deployed.predict_proba(features)
    np.testing.assert_allclose(preds[["p_neither", "p_breakout", "p_reversion"]].to_numpy(), want)
    assert not np.allclose(want, evaluated.predict_proba(features))
    assert set(preds["vin"]) == {vin}


def write_bars(directory: Path, bars: pd.DataFrame) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    bars.to_parquet(directory / f"{SYMBOL}.parquet")
    return directory


def snapshot(folder: Path) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file()}


def test_paper_ledger_is_append_only_and_idempotent(world, tmp_path):
    registry, vin, bars = world["registry"], world["vin"], world["bars"]
    assert reg.deploy(registry, 0, vin)["model_file"] == "refit/model.txt"
    ledgers = tmp_path / "paper"
    # no bar after the training data: an empty ledger
    first = pt.paper_trade(registry, write_bars(tmp_path / "b0", bars.iloc[:TRAIN_BARS]), ledgers)
    assert first[0]["evidence"] == {"n_bars": 0, "n_trades": 0}
    live = write_bars(tmp_path / "b1", bars.iloc[: TRAIN_BARS + 600])
    [s1] = pt.paper_trade(registry, live, ledgers)
    folder = paper.ledger_path(ledgers, 0, vin)
    assert s1["model"] == "refit" and s1["evidence"]["n_bars"] > 500 and s1["evidence"]["n_trades"] > 0
    before = snapshot(folder)
    [again] = pt.paper_trade(registry, live, ledgers)  # no new bars: byte-identical, nothing touched
    assert snapshot(folder) == before and again["appended"] == {"bars": 0, "trades": 0}
    # new bars extend the ledger without rewriting the past
    [s2] = pt.paper_trade(registry, write_bars(tmp_path / "b2", bars), ledgers)
    for name in (paper.EQUITY_FILE, paper.TRADES_FILE):
        old, new = before[name][0], (folder / name).read_bytes()
        assert new.startswith(old) and len(new) > len(old)
    assert (
        s2["evidence"]["n_bars"]
        == s1["evidence"]["n_bars"] + s2["appended"]["bars"]
        > s1["evidence"]["n_bars"]
    )
    # no bar at or before the model's last training bar (or the last bar its labels read) is ever traded
    span = contract.training_span(world["folder"], "deployed")
    end = max(pd.Timestamp(span["last_bar"]), pd.Timestamp(span["last_label_bar"]))
    equity = [json.loads(x) for x in (folder / paper.EQUITY_FILE).read_text().splitlines()]
    trades = [json.loads(x) for x in (folder / paper.TRADES_FILE).read_text().splitlines()]
    assert min(pd.Timestamp(r["bar"]) for r in equity) > end >= pd.Timestamp(span["last_bar"])
    assert trades and min(pd.Timestamp(t["entry_time"]) for t in trades) > end
    assert equity[-1]["equity"] == pytest.approx(1 + s2["paper"]["total_return"])
    assert (
        s2["claimed"]["segment"] == "test"
        and s2["rule"]["threshold"]
        == artifacts.read_json(world["folder"] / "metrics.json")["evaluation"]["rule"]["threshold"]
    )
    # a revised past is refused, never rewritten
    (folder / paper.EQUITY_FILE).write_text('{"bar":"x"}\n' + (folder / paper.EQUITY_FILE).read_text())
    with pytest.raises(paper.LedgerError, match="refusing to rewrite the past"):
        pt.paper_trade(registry, write_bars(tmp_path / "b2", bars), ledgers)


def test_cli_paper_and_champions_via_the_entry_point(world, tmp_path):
    registry, vin, bars = world["registry"], world["vin"], world["bars"]
    reg.deploy(registry, 1, vin)
    live = write_bars(tmp_path / "bars", bars.iloc[: TRAIN_BARS + 400])
    exe = Path(sys.executable).with_name("swingflow")
    env = dict(os.environ, SWINGFLOW_REGISTRY=str(registry))

    def run(*args):
        return subprocess.run(
            [str(exe), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
        )

    out = run("--json", "paper", "--bars", str(live), "--slot", "1")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["slots"]
    assert [r["slot"] for r in rows] == [1] and rows[0]["vin"] == vin and rows[0]["paper_bars"] > 0
    assert paper.ledger_path(registry / "paper", 1, vin).joinpath(paper.SUMMARY_FILE).is_file()
    again = run("--json", "paper", "--bars", str(live), "--slot", "1")
    assert again.returncode == 0 and json.loads(again.stdout)["slots"][0]["appended_bars"] == 0
    champs = run("--json", "champions")
    assert champs.returncode == 0, champs.stderr
    [row] = [r for r in json.loads(champs.stdout) if r["vin"] == vin]
    assert row["paper_bars"] == rows[0]["paper_bars"] and row["claimed_trades"] is not None
    table = run("champions")
    assert table.returncode == 0 and "claimed (test) vs paper" in table.stdout and vin in table.stdout
    dash = run("dashboard", "--once", "--results", str(tmp_path / "results"))
    assert dash.returncode == 0, dash.stderr
    assert "claimed (test)" in dash.stdout and f"{rows[0]['paper_bars']}:" in dash.stdout
    more = write_bars(tmp_path / "more", bars.iloc[: TRAIN_BARS + 500])
    appended = run(
        "--json", "predict", "--append", "--paper", "--bars", str(more), "--out", str(tmp_path / "p")
    )
    assert appended.returncode == 0, appended.stderr
    [grown] = [r for r in json.loads(appended.stdout) if r["mode"] == "paper" and "slot_1" in r["file"]]
    assert grown["rows_added"] == 100  # predict --append --paper: the new bars extend the ledger
    bad = run("paper", "--bars", str(tmp_path / "missing"))
    assert bad.returncode == 1 and "no bars for BTCUSDT" in bad.stderr


def test_workflow_entry_paper_trade(world, tmp_path):
    """The rule's entry (rules/lifecycle.smk paper_trade) through the one job runner."""
    registry, vin, bars = world["registry"], world["vin"], world["bars"]
    reg.deploy(registry, 2, vin)
    live = write_bars(tmp_path / "ingest", bars.iloc[: TRAIN_BARS + 300])
    out = tmp_path / "results" / "lifecycle" / "paper" / f"{SYMBOL}.json"
    manifest = {
        "entry": "lifecycle.paper_trade",
        "input": {"roster": str(tmp_path / "roster.json"), "bars": [str(live / f"{SYMBOL}.parquet")]},
        "output": {"summary": str(out)},
        "params": {
            "registry": str(registry),
            "ledger": str(tmp_path / "ledgers"),
            "spec": config_group("registry"),
            "notifications": config_group("env")["notifications"],
        },
        "threads": 1,
        "wildcards": {"symbol": SYMBOL},
    }
    run = subprocess.run(
        [sys.executable, "-m", "workflow_scripts.job", json.dumps(manifest)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    doc = artifacts.read_json(out)
    slots = {r["slot"]: r for r in doc["slots"]}
    assert doc["symbol"] == SYMBOL and slots[2]["vin"] == vin and slots[2]["paper_bars"] > 0
    assert paper.ledger_path(tmp_path / "ledgers", 2, vin).joinpath(paper.EQUITY_FILE).is_file()


def test_torch_refit_runs_the_early_stopped_epoch_count_on_every_usable_row(world, tmp_path):
    pytest.importorskip("torch")
    comb = world["comb"]
    cfg = load("model/torch_mlp")
    cfg.update(max_epochs=3, seq_len=6)
    cfg["params"].update(hidden=[16])
    trained = production.train_combination(comb, {}, cfg, threads=1)
    refit = production.refit_combination(comb, {}, trained, cfg, threads=1)
    doc = refit.document
    assert doc["unit"] == "epochs" and doc["rounds"] == trained.model.best_iteration  # unscaled
    assert refit.model.log["epochs_run"] == doc["rounds"] and not refit.model.log["stopped_early"]
    assert doc["rows"]["refit"] == len(production.refit_rows(comb))

    def documents(sha256, refit_sha256):
        return {
            "config.json": {
                "symbol": SYMBOL,
                "window": WINDOW,
                "side": "high",
                "target": comb.target,
                "model_type": "torchscript",
            },
            "metrics.json": {"vin": "TMLP-TEST"},
            "costs.json": {},
            "features.json": {"features": list(comb.X.columns)},
            "split_indices.json": {},
            "training_log.json": {},
            "refit/refit.json": doc | {"model_sha256": refit_sha256},
        }

    folder = tmp_path / "torch"
    production.write_folder(folder, trained.model, documents, refit=refit)
    contract.verify_folder(folder)
    frame = pd.concat([comb.targets[["timestamp"]], comb.X], axis=1).iloc[-300:]
    deployed = contract.load_folder(folder, model="deployed")
    evaluated = contract.load_folder(folder)
    assert deployed.source == "refit" and evaluated.source == "evaluated"
    assert not np.allclose(deployed.predict_proba(frame), evaluated.predict_proba(frame))


def test_an_ensemble_deploys_its_members_refits(world, tmp_path):
    """An ensemble has no refit of its own: "deployed" loads its members' refits (the combination fitted on
    the evaluated members), its training span is theirs."""
    import shutil

    from workflow_scripts.models import ensembles

    vin, member = world["vin"], world["folder"]
    folder = tmp_path / "ensemble"
    members = [{"name": n, "vin": vin} for n in ("a", "b")]
    for m in members:
        shutil.copytree(member, folder / ensembles.MEMBERS_DIR / m["name"])
    ensembles.save_ensemble(folder, ensembles.fit_average(members))
    for name in ("config.json", "costs.json", "features.json", "split_indices.json", "training_log.json"):
        shutil.copy(member / name, folder / name)
    artifacts.write_json(
        folder / "config.json", artifacts.read_json(member / "config.json") | {"model_type": "ensemble"}
    )
    artifacts.write_json(folder / "metrics.json", {"vin": "ENSAVG-TEST"})
    contract.write_sha256(folder)
    frame = world["features"].iloc[-300:]
    deployed = contract.load_folder(folder, model="deployed").predict_proba(frame)
    evaluated = contract.load_folder(folder).predict_proba(frame)
    np.testing.assert_allclose(deployed, contract.load_folder(member, model="deployed").predict_proba(frame))
    np.testing.assert_allclose(evaluated, contract.load_folder(member).predict_proba(frame))
    assert contract.training_span(folder, "deployed") == {
        k: v
        for k, v in contract.training_span(member, "deployed").items()
        if k in ("first_bar", "last_bar", "last_label_bar")
    }
