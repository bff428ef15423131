"""The RL line end to end through Snakemake (issue 17): `agents=ppo` on a copy of the finished tiny run plans
only the agents' jobs (the other rules' params do not read the agents group) and runs them to test
evaluations of the chosen agent (trial codes decode, the DSR counts every agent trial, the TorchScript policy
agrees with SB3), of the agent ensemble chosen on validation and of the hybrid built on the production
models, all packaged as registry model folders; a changed production folder replans the hybrid (and its
packaging) and nothing else of the line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.reliability.conftest import SYMBOLS, jobs_of_dry_run, output_text, smk, tiny
from workflow_scripts.agents import trial_code
from workflow_scripts.artifacts import read_json, sha256_file
from workflow_scripts.lifecycle import paper
from workflow_scripts.models.folder import load_folder
from workflow_scripts.registry import paper_trading
from workflow_scripts.registry import store as reg

pytestmark = pytest.mark.slow

AGENTS_RUN = tiny(
    "tuning.budget.trials.stage2=1",
    "tuning.max_rounds=200",
    "tuning.cv.n_folds=3",
    "tuning.cv.min_train_rows=50",
    "agents.study.trials=2",
    "agents.study.min_trades=0",
    "agents.agent.total_timesteps=512",
    "agents.agent.n_steps=128",
    "agents.cnn_lstm.max_epochs=2",
    groups={"agents": "ppo"},
)


@pytest.fixture(scope="module")
def agents_run(clean_run, tmp_path_factory) -> tuple[Path, dict[str, int]]:
    wd = tmp_path_factory.mktemp("agents") / "wf"
    shutil.copytree(clean_run, wd, symlinks=True)
    plan = smk(wd, "-n", config=AGENTS_RUN, timeout=600)
    assert plan.returncode == 0, output_text(plan)[-3000:]
    planned: dict[str, int] = {}
    for rule, _ in jobs_of_dry_run(output_text(plan)):
        planned[rule] = planned.get(rule, 0) + 1
    proc = smk(wd, config=AGENTS_RUN, timeout=1200)
    assert proc.returncode == 0, output_text(proc)[-4000:]
    return wd, planned


def test_switching_agents_on_plans_only_the_agents_jobs(agents_run):
    _, planned = agents_run
    n = len(SYMBOLS)
    # The resolved config records every group, the agents group included; no other rule reads it.
    assert planned == {
        "write_resolved_config": 1,
        "train_cnn_lstm": n,
        "tune_agent": n,
        "evaluate_agent": n,
        "fit_agent_ensemble": n,
        "evaluate_agent_ensemble": n,
        "tune_hybrid": n,
        "evaluate_hybrid": n,
        "package_agent_models": n,
        "register_agent_models": n,
        "all": 1,
    }


def test_the_test_evaluation_is_chosen_on_validation_and_counts_every_trial(agents_run):
    wd, _ = agents_run
    for symbol in SYMBOLS:
        result = read_json(wd / "results" / "agents" / "test" / f"{symbol}.json")
        study = read_json(wd / "results" / "agents" / "study" / symbol / "ppo.json")
        assert result["scored_on"] == "test" and result["kind"] == "ppo"
        assert result["sharpe_tests"]["n_trials"] == study["n_trials"] == 2
        assert result["code"] == study["chosen"]["code"]
        decoded = trial_code.decode(result["code"])
        assert decoded["type"] == "PPO"
        for name in ("net_width", "batch_size", "gamma"):  # the agent's parameters
            assert decoded[name] == result["params"][name], name
        for name in ("lookback", "time_decay"):  # the environment's
            assert decoded[name] == study["chosen"]["env"][name], name
        cnn = read_json(wd / "results" / "agents" / "cnn_lstm" / symbol / "metadata.json")
        assert cnn["parity_max_abs_diff"] < 1e-4  # the TorchScript export agrees with the trained module
        assert cnn["model_sha256"] == sha256_file(
            wd / "results" / "agents" / "cnn_lstm" / symbol / "model.pt"
        )
        exported = study["export"]
        assert exported["parity"]["max_abs_diff"] <= 1e-5
        assert exported["policy_sha256"] == sha256_file(
            wd / "results" / "agents" / "study" / symbol / "ppo.pt"
        )


def result_code(wd, symbol) -> str:
    return read_json(wd / "results" / "agents" / "test" / f"{symbol}.json")["code"]


def test_the_ensemble_and_the_hybrid_are_evaluated_once_on_test(agents_run):
    wd, _ = agents_run
    for symbol in SYMBOLS:
        doc = read_json(wd / "results" / "agents" / "ensemble" / symbol / "agent_ensemble.json")
        assert doc["choice"]["scored_on"] == "validation"
        ensemble = read_json(wd / "results" / "agents" / "test" / "ensemble" / f"{symbol}.json")
        assert ensemble["scored_on"] == "test"
        assert ensemble["sharpe_tests"]["n_trials"] == 2 + doc["n_candidates"]
        study = read_json(wd / "results" / "agents" / "hybrid" / symbol / "study.json")
        for side in ("high", "low"):
            folder = wd / "results" / "production" / symbol / "w5" / side
            dep = study["dependencies"][side]
            assert dep["model_sha256"] == sha256_file(folder / dep["model_file"])
        hybrid = read_json(wd / "results" / "agents" / "test" / "hybrid" / f"{symbol}.json")
        assert hybrid["scored_on"] == "test" and hybrid["kind"] == "hybrid"
        # every model of the line is a registry model folder that verifies and loads (models/kinds.py)
        packaged = wd / "results" / "agents" / "models" / symbol
        types = {load_folder(f).model_type for f in packaged.iterdir() if f.is_dir()}
        assert types == {"cnn_lstm", "agent", "agent_ensemble", "hybrid"}
        assert (packaged / result_code(wd, symbol)).is_dir()  # the chosen agent is in the top 10 %


def test_a_changed_production_folder_replans_the_hybrid_only(agents_run):
    """Forcing one production folder (what a retrained model does) replans, of the RL line, the hybrid (and
    the packaging of the models, which holds the hybrid), not the extractor, the agents or the ensemble."""
    wd, _ = agents_run
    folder = f"results/production/{SYMBOLS[0]}/w5/high"
    plan = smk(wd, "-n", "--forcerun", folder, config=AGENTS_RUN, timeout=600)
    assert plan.returncode == 0, output_text(plan)[-3000:]
    rules = {rule for rule, _ in jobs_of_dry_run(output_text(plan))}
    assert "evaluate_production" in rules
    assert {r for r in rules if "agent" in r or "hybrid" in r or "cnn" in r} == {
        "tune_hybrid",
        "evaluate_hybrid",
        "package_agent_models",
        "register_agent_models",
    }


def _append_bars(wd: Path, symbol: str, out: Path, n_new: int) -> tuple[Path, Path]:
    """The run's bars (timestamp, close) and feature table of `symbol` with `n_new` appended hourly bars (a
    random walk from the last close; features: the last `n_new` rows' values under the new timestamps)."""
    bars = pd.read_parquet(wd / "results" / "ingest" / f"{symbol}.parquet", columns=["timestamp", "close"])
    feats = pd.read_parquet(wd / "results" / "features" / f"{symbol}.parquet")
    step = bars["timestamp"].iloc[-1] - bars["timestamp"].iloc[-2]
    ts = bars["timestamp"].iloc[-1] + step * np.arange(1, n_new + 1)
    close = bars["close"].iloc[-1] * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, n_new)))
    new_feats = feats.iloc[-n_new:].copy()
    new_feats["timestamp"] = ts
    dirs = (out / "bars", out / "features")
    frames = (
        pd.concat([bars, pd.DataFrame({"timestamp": ts, "close": close})]),
        pd.concat([feats, new_feats]),
    )
    for d, frame in zip(dirs, frames):
        d.mkdir(parents=True)
        frame.reset_index(drop=True).to_parquet(d / f"{symbol}.parquet")
    return dirs


def test_the_agents_are_registered_and_the_chosen_one_paper_trades_appended_bars(agents_run, tmp_path):
    wd, _ = agents_run
    resolved = read_json(wd / "results" / "config" / "resolved.json")
    registry, gates = wd / resolved["env"]["storage"]["registry_dir"], resolved["gates"]["name"]
    index = reg.read_index(registry)["models"]
    for symbol in SYMBOLS:
        record = read_json(wd / "results" / "registry" / "agents" / f"{symbol}.json")
        packaged = wd / "results" / "agents" / "models" / symbol
        # every packaged folder, under its metrics.json VIN (an agent's: `<trial code>.<SYMBOL>`, since both
        # coins' studies can give the same code)
        assert sorted(m["vin"] for m in record["models"]) == sorted(
            read_json(p / "metrics.json")["vin"] for p in packaged.iterdir() if p.is_dir()
        )
        cnn = next(m["vin"] for m in record["models"] if m["model_type"] == "cnn_lstm")
        chosen = f"{result_code(wd, symbol)}.{symbol}"
        for m in record["models"]:
            entry = index[m["vin"]]
            assert entry["side"] == "both" and entry["files"] == reg.verify_folder(wd / entry["source"])
            if m["model_type"] in ("agent", "hybrid", "agent_ensemble"):
                assert entry["dependencies"]["cnn_lstm"] == cnn
                assert entry["dependencies"]["cnn_lstm_sha256"] == index[cnn]["model_sha256"]
            # validation evidence: the chosen agent, the ensemble and the hybrid, judged by the run's gate
            evidence = m["vin"] == chosen or m["model_type"] in ("hybrid", "agent_ensemble")
            assert (entry["validation"] is not None) == evidence, m["vin"]
            assert reg.eligibility(entry)[2] == ("validation" if evidence else reg.NO_EVIDENCE)
            if evidence:
                assert (
                    entry["validation"]["gate_profile"] == gates and entry["validation"]["bars"]["count"] > 1
                )
        # the rule judged the three evidence-carrying folders for the symbol's agent slot, nothing else
        judged = [m["vin"] for m in record["models"] if reg.eligibility(index[m["vin"]])[2] == "validation"]
        assert sorted(d["vin"] for d in record["decisions"]) == sorted(judged) and len(judged) == 3
    # the chosen agent of the first symbol, deployed in a copy of the registry, on 48 appended bars
    symbol = SYMBOLS[0]
    code = f"{result_code(wd, symbol)}.{symbol}"
    copy = tmp_path / "registry"
    shutil.copytree(registry, copy, symlinks=True)
    assert reg.deploy(copy, 7, code)["side"] == "both"
    bars, features = _append_bars(wd, symbol, tmp_path, 48)
    first = paper_trading.paper_trade(copy, bars, symbols=[symbol], slots=[7], features_dir=features)
    assert first[0]["vin"] == code and first[0]["evidence"]["n_bars"] == 46 == first[0]["appended"]["bars"]
    folder = paper.ledger_path(paper.default_ledger_dir(copy), 7, code)
    before = {n: (folder / n).read_bytes() for n in paper.LEDGER_FILES}
    again = paper_trading.paper_trade(copy, bars, symbols=[symbol], slots=[7], features_dir=features)
    assert again[0]["appended"] == {"bars": 0, "trades": 0}
    assert {n: (folder / n).read_bytes() for n in paper.LEDGER_FILES} == before
    # the ensemble and the hybrid (its production models from the run's registry) on the same bars
    record = read_json(wd / "results" / "registry" / "agents" / f"{symbol}.json")
    both = {
        m["model_type"]: m["vin"] for m in record["models"] if m["model_type"] in ("agent_ensemble", "hybrid")
    }
    reg.deploy(copy, 8, both["agent_ensemble"])
    reg.deploy(copy, 9, both["hybrid"])
    rows = paper_trading.paper_trade(copy, bars, symbols=[symbol], slots=[8, 9], features_dir=features)
    assert [(r["vin"], r["evidence"]["n_bars"]) for r in rows] == [
        (both["agent_ensemble"], 46),
        (both["hybrid"], 46),
    ]
