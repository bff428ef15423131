"""The rule entries on small files: CNN-LSTM -> agent studies (PPO and SAC, TorchScript policies) -> one test
evaluation; the ensemble of the top trials chosen on validation -> its test evaluation; the hybrid on the
production models' probabilities -> its test evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tests.agents.conftest import AGENTS, COSTS, production_folder
from tests.conftest import hourly
from workflow_scripts import artifacts
from workflow_scripts.agents import export, jobs, trial_code
from workflow_scripts.agents.agents import ALGORITHMS
from workflow_scripts.config.schema import config_group
from workflow_scripts.evaluation.costs import snapshot_of
from workflow_scripts.job import Job
from workflow_scripts.models import kinds
from workflow_scripts.models.folder import IntegrityError, load_folder, verify_folder

N = 900
SPEC = {k: v for k, v in AGENTS.items() if k not in ("name", "enabled", "kinds", "window")} | {
    "cnn_lstm": AGENTS["cnn_lstm"]
    | {"seq_len": 8, "conv_channels": 4, "hidden": 8, "embedding_dim": 3, "max_epochs": 2, "horizon": 3}
    | {"device": "cpu"},
    "env": AGENTS["env"] | {"episode_bars": 64},
    "agent": AGENTS["agent"] | {"total_timesteps": 128, "n_steps": 64, "learning_starts": 32},
    "study": AGENTS["study"] | {"trials": 3, "seed": 1, "min_trades": 0},
    "space": {"net_width": {"choices": [8, 16]}, "lookback": {"choices": [1, 2]}},
    "ensemble": AGENTS["ensemble"] | {"max_members": 2},
}
GRADES = config_group("grades")
GATES = {
    "name": "strict",
    "label": "test",
    "min_trades": 30,
    "min_dsr": 0.95,
    "max_drawdown": 0.25,
    "min_net_return": 0.0,
}


def _job(entry, inputs, outputs, wildcards, **params):
    return Job(
        entry,
        SimpleNamespace(**inputs),
        SimpleNamespace(**outputs),
        SimpleNamespace(**params),
        SimpleNamespace(**wildcards),
        1,
    )


def _files(tmp):
    rng = np.random.default_rng(0)
    ts = hourly(N)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, N)))
    bars = pd.DataFrame({"timestamp": ts, "close": close})
    feats = pd.DataFrame(
        {"timestamp": ts} | {f"f{i}": rng.normal(size=N).astype("float32") for i in range(3)}
    )
    paths = {
        k: tmp / f"{k}"
        for k in ("bars.parquet", "features.parquet", "selected.json", "split.json", "costs.json")
    }
    bars.to_parquet(paths["bars.parquet"])
    feats.to_parquet(paths["features.parquet"])
    artifacts.write_json(paths["selected.json"], {"features": ["f0", "f2"]})
    split = {
        s: {"lo": lo, "hi": hi}
        for s, (lo, hi) in {"train": (0, 540), "validation": (560, 720), "test": (740, 900)}.items()
    }
    artifacts.write_json(paths["split.json"], split)
    artifacts.write_json(paths["costs.json"], snapshot_of(COSTS))
    return paths


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Every entry once, in the workflow's order; {name: path}."""
    tmp = tmp_path_factory.mktemp("agents")
    p = _files(tmp)
    out = tmp / "results"
    cnn = {
        "model": out / "cnn/model.pt",
        "embeddings": out / "cnn/embeddings.parquet",
        "metadata": out / "cnn/metadata.json",
    }
    jobs.train_cnn_lstm(
        _job(
            "agents.train_cnn_lstm",
            {
                "features": p["features.parquet"],
                "selected": p["selected.json"],
                "bars": p["bars.parquet"],
                "split": p["split.json"],
            },
            cnn,
            {"symbol": "TESTUSDT"},
            spec=SPEC,
        )
    )
    common = {
        "embeddings": cnn["embeddings"],
        "bars": p["bars.parquet"],
        "split": p["split.json"],
        "costs": p["costs.json"],
    }
    studies, models = [], []
    for kind in ("ppo", "sac"):
        outputs = {
            k: out / f"study/{kind}.{ext}"
            for k, ext in (("result", "json"), ("model", "zip"), ("policy", "pt"))
        }
        jobs.tune_agent(
            _job(
                "agents.tune_agent",
                common,
                outputs,
                {"symbol": "TESTUSDT", "agent": kind},
                spec=SPEC,
                grades=GRADES,
            )
        )
        studies.append(outputs["result"])
        models.append(outputs["model"])
    judged = {"grades": GRADES, "gates": GATES}
    files = {"cnn": cnn, "studies": studies, "models": models, "test": out / "test.json"}
    jobs.evaluate_agent(
        _job(
            "agents.evaluate_agent",
            common | {"studies": studies, "models": models},
            {"result": files["test"]},
            {"symbol": "TESTUSDT"},
            spec=SPEC,
            **judged,
        )
    )
    files["ensemble"] = out / "ensemble" / "TESTUSDT"
    jobs.fit_agent_ensemble(
        _job(
            "agents.fit_agent_ensemble",
            common | {"studies": studies, "models": models},
            {"folder": files["ensemble"]},
            {"symbol": "TESTUSDT"},
            spec=SPEC,
            grades=GRADES,
        )
    )
    files["ensemble_test"] = out / "test_ensemble.json"
    jobs.evaluate_agent_ensemble(
        _job(
            "agents.evaluate_agent_ensemble",
            common | {"ensemble": files["ensemble"], "studies": studies},
            {"result": files["ensemble_test"]},
            {"symbol": "TESTUSDT"},
            spec=SPEC,
            **judged,
        )
    )
    table = pd.read_parquet(p["features.parquet"])
    labels = np.digitize(table["f0"].to_numpy(), [-0.5, 0.5])
    production = [
        production_folder(tmp / "production" / side, side, table, labels, np.arange(0, 540))
        for side in ("high", "low")
    ]
    hybrid = {k: out / "hybrid" / name for k, name in HYBRID_FILES.items()}
    jobs.tune_hybrid(
        _job(
            "agents.tune_hybrid",
            common | {"production": production, "features": p["features.parquet"]},
            hybrid,
            {"symbol": "TESTUSDT"},
            spec=SPEC,
            grades=GRADES,
        )
    )
    files["hybrid"], files["production"], files["hybrid_test"] = hybrid, production, out / "test_hybrid.json"
    jobs.evaluate_hybrid(
        _job(
            "agents.evaluate_hybrid",
            common
            | {
                "study": hybrid["result"],
                "model": hybrid["model"],
                "probabilities": hybrid["probabilities"],
                "studies": studies,
            },
            {"result": files["hybrid_test"]},
            {"symbol": "TESTUSDT"},
            spec=SPEC,
            **judged,
        )
    )
    files["packaged"], files["features"] = out / "models" / "TESTUSDT", p["features.parquet"]
    files["bars"] = p["bars.parquet"]
    jobs.package_agent_models(
        _job(
            "agents.package_agent_models",
            common
            | {
                "cnn_model": cnn["model"],
                "cnn_metadata": cnn["metadata"],
                "studies": studies,
                "models": models,
                "policies": [m.with_suffix(".pt") for m in models],
                "test": files["test"],
                "ensemble": [files["ensemble"]],
                "ensemble_test": [files["ensemble_test"]],
                "hybrid_study": [hybrid["result"]],
                "hybrid_policy": [hybrid["policy"]],
                "hybrid_test": [files["hybrid_test"]],
            },
            {"folder": files["packaged"]},
            {"symbol": "TESTUSDT"},
            spec=SPEC | {"archive_top_percent": 50},
            grades=GRADES,
            window=5,
        )
    )
    return files


HYBRID_FILES = {
    "result": "study.json",
    "model": "policy.zip",
    "policy": "policy.pt",
    "probabilities": "probabilities.parquet",
}


def test_cnn_lstm_then_studies_then_one_test_evaluation(run):
    meta = artifacts.read_json(run["cnn"]["metadata"])
    assert meta["feature_names"] == ["f0", "f2"] and meta["parity_max_abs_diff"] <= 1e-5
    assert list(pd.read_parquet(run["cnn"]["embeddings"]).columns) == [
        "timestamp",
        "cnn_lstm_0",
        "cnn_lstm_1",
        "cnn_lstm_2",
    ]
    for path, kind in zip(run["studies"], ("ppo", "sac")):
        study = artifacts.read_json(path)
        assert study["n_trials"] == 3 and study["kind"] == kind
        assert trial_code.decode(study["chosen"]["code"])["type"] == kind.upper()
        assert path.with_suffix(".journal").exists()
    result = json.loads(run["test"].read_text())
    assert result["scored_on"] == "test" and result["segment"] == {"lo": 740, "hi": 900, "n_steps": 159}
    assert result["sharpe_tests"]["n_trials"] == 6
    assert result["gate"]["profile"] == "strict"
    assert result["kind"] in ("ppo", "sac")


def test_every_chosen_policy_is_exported_beside_its_zip_with_parity(run):
    for path in run["studies"]:
        study = artifacts.read_json(path)
        exported = study["export"]
        assert exported["policy_sha256"] == artifacts.sha256_file(path.with_suffix(".pt"))
        assert exported["parity"]["max_abs_diff"] <= exported["parity"]["tolerance"] == 1e-5
        assert exported["parity"]["n_observations"] == 159  # every step of the validation episode
        observation = study["chosen"]["observation"]
        assert observation["features"] == ["cnn_lstm_0", "cnn_lstm_1", "cnn_lstm_2"]
        assert observation["size"] == study["chosen"]["env"]["lookback"] * 3 + 3
        assert observation["standardised_on"] == [0, 540]


def test_the_ensemble_is_chosen_on_validation_and_evaluated_once_on_test(run):
    doc = artifacts.read_json(run["ensemble"] / "agent_ensemble.json")
    choice = doc["choice"]
    assert choice["scored_on"] == "validation" and len(choice["candidates"]) == 4  # k = 1, 2 x 2 methods
    assert choice["chosen"]["value"] == max(c["value"] for c in choice["candidates"])
    for m in doc["members"]:
        assert m["sha256"] == artifacts.sha256_file(run["ensemble"] / m["file"])
    result = artifacts.read_json(run["ensemble_test"])
    assert result["scored_on"] == "test" and result["segment"]["lo"] == 740
    assert result["sharpe_tests"]["n_trials"] == 6 + 4  # every agent trial and every candidate
    assert result["members"] == [m["code"] for m in doc["members"]]


def test_the_hybrid_learns_on_validation_and_records_its_production_models(run):
    study = artifacts.read_json(run["hybrid"]["result"])
    assert study["hybrid"]["segments"] == {"fit": [560, 656], "select": [656, 720]}
    assert trial_code.decode(study["chosen"]["code"])["type"] == "HPPO"
    assert study["chosen"]["observation"]["features"][-6:] == [
        f"p_{s}_{c}" for s in ("high", "low") for c in ("neither", "breakout", "reversion")
    ]
    for side, folder in zip(("high", "low"), run["production"]):
        assert study["dependencies"][side]["model_sha256"] == artifacts.sha256_file(folder / "model.txt")
    assert study["hybrid"]["production_last_train_bar"] == {"high": 539, "low": 539}
    result = artifacts.read_json(run["hybrid_test"])
    assert result["scored_on"] == "test" and result["segment"]["lo"] == 740
    assert result["sharpe_tests"]["n_trials"] == 6 + 3  # the agent trials and the hybrid's


def test_every_rl_model_is_a_loadable_verified_registry_folder(run, tmp_path):
    listing = artifacts.read_json(run["packaged"] / "trials.json")
    agent_trials = [t for t in listing["trials"] if not t["kind"].startswith("hybrid")]
    assert len(agent_trials) == 6
    packaged = [t for t in agent_trials if t["folder"]]
    assert len(packaged) == 3  # the top 50 % of 6 scored trials, whichever way each policy was obtained
    best = max(agent_trials, key=lambda t: t["value"])
    assert best["folder"] == best["code"]
    folders = sorted(p for p in run["packaged"].iterdir() if p.is_dir())
    types = set()
    for folder in folders:
        verify_folder(folder)
        loaded = load_folder(folder)
        types.add(loaded.model_type)
        config = artifacts.read_json(folder / "config.json")
        if loaded.model_type == "cnn_lstm":
            table = pd.read_parquet(run["cnn"]["embeddings"])
            feats = pd.read_parquet(run["features"])
            got = loaded.predict_fn(feats[loaded.features].to_numpy(np.float32), feats["timestamp"])
            np.testing.assert_allclose(got, table.filter(like="cnn_lstm_").to_numpy(), atol=1e-6)
            continue
        frame = pd.DataFrame(
            np.random.default_rng(0).normal(size=(20, len(loaded.features))), columns=loaded.features
        )
        weights = loaded.predict_proba(frame)
        assert weights.shape == (20, 3)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
        assert config["side"] == "both" and config["model_kind"] in kinds.KINDS
    assert types == {"cnn_lstm", "agent", "agent_ensemble", "hybrid"}
    folder = shutil.copytree(run["packaged"] / packaged[0]["folder"], tmp_path / "copy")
    (folder / "metrics.json").write_text("{}")
    with pytest.raises(IntegrityError, match="metrics.json: sha256 mismatch"):
        load_folder(folder)


def test_the_best_packaged_policy_acts_like_its_sb3_model(run):
    listing = artifacts.read_json(run["packaged"] / "trials.json")
    best = max((t for t in listing["trials"] if t["kind"] in ("ppo", "sac")), key=lambda t: t["value"])
    zip_path = next(m for m in run["models"] if m.stem == best["kind"])
    model = ALGORITHMS[best["kind"]].load(zip_path, device="cpu")
    loaded = load_folder(run["packaged"] / best["code"])
    obs = np.random.default_rng(1).normal(size=(50, len(loaded.features))).astype(np.float32)
    checked = export.parity(model, (loaded.folder / "policy.pt").read_bytes(), obs)
    assert checked["max_abs_diff"] <= 1e-5


def _appended(run, tmp, n_new: int) -> tuple:
    """The run's bars and feature table with `n_new` new hourly bars (a random walk from the last close,
    random features): <tmp>/bars and <tmp>/features folders of TESTUSDT.parquet."""
    bars, feats = pd.read_parquet(run["bars"]), pd.read_parquet(run["features"])
    rng = np.random.default_rng(7)
    ts = bars["timestamp"].iloc[-1] + pd.to_timedelta(np.arange(1, n_new + 1), unit="h")
    close = bars["close"].iloc[-1] * np.exp(np.cumsum(rng.normal(0, 0.01, n_new)))
    new_feats = pd.DataFrame(
        {"timestamp": ts} | {c: rng.normal(size=n_new).astype("float32") for c in feats.columns[1:]}
    )
    dirs = (tmp / "bars", tmp / "features")
    for d, frame in zip(
        dirs,
        (pd.concat([bars, pd.DataFrame({"timestamp": ts, "close": close})]), pd.concat([feats, new_feats])),
    ):
        d.mkdir(parents=True, exist_ok=True)
        frame.reset_index(drop=True).to_parquet(d / "TESTUSDT.parquet")
    return dirs


def test_packaged_agents_register_deploy_and_paper_trade(run, tmp_path):
    from workflow_scripts.lifecycle import paper
    from workflow_scripts.registry import paper_trading, runs
    from workflow_scripts.registry import store as reg

    registry = tmp_path / "registry"
    record = runs.register_agents(registry, run["packaged"])
    index = reg.read_index(registry)["models"]
    by_type = {}
    for m in record["models"]:
        by_type.setdefault(m["model_type"], []).append(m["vin"])
    assert record["models"][0]["model_type"] == "cnn_lstm"  # the dependency first
    assert set(by_type) == {"cnn_lstm", "agent", "agent_ensemble", "hybrid"}
    cnn = index[by_type["cnn_lstm"][0]]
    for vin in by_type["agent"] + by_type["hybrid"]:
        e = index[vin]
        assert (
            e["side"] == "both"
            and e["target"] == "agent"
            and e["lineage"] == f"TESTUSDT/both/{e['model_type']}"
        )
        assert e["dependencies"]["cnn_lstm"] == cnn["vin"]
        assert e["dependencies"]["cnn_lstm_sha256"] == cnn["model_sha256"]
    hybrid = index[by_type["hybrid"][0]]["dependencies"]["models"]
    for side in ("high", "low"):
        assert hybrid[side]["model_sha256"] == artifacts.sha256_file(
            run["production"][["high", "low"].index(side)] / hybrid[side]["model_file"]
        )
    # a rerun with the same folders writes nothing
    before = (registry / "index.json").read_bytes()
    assert runs.register_agents(registry, run["packaged"])["models"] == record["models"]
    assert (registry / "index.json").read_bytes() == before
    # an agent without its extractor registered is refused by name
    with pytest.raises(reg.RegistryError, match=r"register its CNN-LSTM CNNLSTM-TESTUSDT-\w+ first"):
        reg.register(tmp_path / "other", index[by_type["agent"][0]]["source"])
    # deploy the best agent by validation value with the ordinary deploy; paper-trade appended bars
    best = max(by_type["agent"], key=lambda v: index[v]["score"])
    info = reg.deploy(registry, 2, best)
    assert info["side"] == "both" and info["model_file"] == "policy.pt"
    bars_dir, features_dir = _appended(run, tmp_path, 60)
    ledger = tmp_path / "ledger"
    first = paper_trading.paper_trade(registry, bars_dir, ledger, features_dir=features_dir)
    assert len(first) == 1 and first[0]["vin"] == best and first[0]["side"] == "both"
    assert first[0]["evidence"]["n_bars"] == 60 - 2 == first[0]["appended"]["bars"]
    last_bar = artifacts.read_json(Path(index[best]["source"]) / "config.json")["last_bar"]
    # the registry VIN is the trial code and the symbol: the same code may come from another coin's study
    assert best == f"{Path(index[best]['source']).name}.TESTUSDT"
    assert pd.Timestamp(first[0]["paper_start"]) > pd.Timestamp(last_bar).tz_convert("UTC")
    assert (
        pd.Timestamp(last_bar) == pd.to_datetime(pd.read_parquet(run["bars"])["timestamp"], utc=True).iloc[-1]
    )
    folder = paper.ledger_path(ledger, 2, best)
    snap = {n: ((folder / n).read_bytes(), (folder / n).stat().st_mtime_ns) for n in paper.LEDGER_FILES}
    again = paper_trading.paper_trade(registry, bars_dir, ledger, features_dir=features_dir)
    assert again[0]["appended"] == {"bars": 0, "trades": 0}
    assert {
        n: ((folder / n).read_bytes(), (folder / n).stat().st_mtime_ns) for n in paper.LEDGER_FILES
    } == snap
    # the champion rules read it like any ledger (compare.Evidence of per-bar after-cost returns)
    evidence = paper_trading.paper_evidence(registry, best, ledger)
    assert len(evidence.returns) == 58 and evidence.source == "paper"
    # a feature table lagging the bars: the bars without features wait; later calls append them
    lagging = tmp_path / "lagging"
    lagging.mkdir()
    table = pd.read_parquet(features_dir / "TESTUSDT.parquet")
    table.iloc[:-10].to_parquet(lagging / "TESTUSDT.parquet")
    fresh = tmp_path / "ledger2"
    early = paper_trading.paper_trade(registry, bars_dir, fresh, features_dir=lagging)
    assert early[0]["evidence"]["n_bars"] == 60 - 2 - 10
    head = (paper.ledger_path(fresh, 2, best) / paper.EQUITY_FILE).read_bytes()
    late = paper_trading.paper_trade(registry, bars_dir, fresh, features_dir=features_dir)
    assert late[0]["appended"]["bars"] == 10
    grown = (paper.ledger_path(fresh, 2, best) / paper.EQUITY_FILE).read_bytes()
    assert grown.startswith(head) and grown == (folder / paper.EQUITY_FILE).read_bytes()
    # the workflow rule has no feature tables: an agent slot is skipped with the reason
    skipped = paper_trading.paper_trade(registry, bars_dir, ledger, skip_missing=True)
    assert "swingflow paper --features" in skipped[0]["skipped"]


def test_an_agent_slot_through_the_cli_and_the_dashboard(run, tmp_path, capsys):
    """`swingflow deploy` and `swingflow paper --features` (the existing commands) serve an agent slot; the
    dashboard's agent section lists the trials by validation value with their codes, and the slot."""
    from workflow_scripts.ops.cli import main
    from workflow_scripts.registry import dashboard, runs

    registry = tmp_path / "registry"
    record = runs.register_agents(registry, run["packaged"])
    agents = [m for m in record["models"] if m["model_type"] == "agent"]
    vin = agents[0]["vin"]
    assert main(["--registry", str(registry), "--json", "deploy", "--slot", "1", vin]) == 0
    assert json.loads(capsys.readouterr().out)["side"] == "both"
    bars_dir, features_dir = _appended(run, tmp_path, 30)
    args = ["--registry", str(registry), "--json", "paper", "--bars", str(bars_dir)]
    assert main([*args, "--features", str(features_dir)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(s["slot"], s["vin"], s["paper_bars"]) for s in out["slots"]] == [(1, vin, 28)]
    assert out["changes"] == []
    assert main([*args, "--features", str(features_dir)]) == 0  # nothing new
    assert json.loads(capsys.readouterr().out)["slots"][0]["appended_bars"] == 0
    # the dashboard's section: trials.json of results/agents/models/<SYMBOL>/
    results = tmp_path / "results"
    listed = results / "agents" / "models" / "TESTUSDT"
    listed.mkdir(parents=True)
    shutil.copy(run["packaged"] / "trials.json", listed / "trials.json")
    section = dashboard.snapshot(registry, results)["agents"]
    trials = artifacts.read_json(listed / "trials.json")["trials"]
    assert section["n_trials"] == len(trials)
    values = [t["value"] for t in section["trials"] if t["value"] is not None]
    assert values == sorted(values, reverse=True) and values[0] == max(t["value"] for t in trials)
    assert all(trial_code.decode(t["code"])["grade"] == t["grade"] for t in section["trials"])
    assert [(s["slot"], s["vin"], s["paper"]["paper_bars"]) for s in section["slots"]] == [(1, vin, 28)]
    assert main(["--registry", str(registry), "dashboard", "--once", "--results", str(results)]) == 0
    frame = capsys.readouterr().out
    assert "Agent trials: top by validation" in frame and "Agent paper slots" in frame
