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
# the packaged evidence's gate: loose enough for the tiny agents to pass (a passed verdict is what the
# champion rules need; the gate's own arithmetic is tests/evaluation's)
LENIENT = {
    "name": "lenient",
    "label": "test",
    "min_trades": 1,
    "min_dsr": 0.0,
    "max_drawdown": 1.0,
    "min_net_return": -1.0,
}
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
                "hybrid_probabilities": [hybrid["probabilities"]],
                "hybrid_test": [files["hybrid_test"]],
            },
            {"folder": files["packaged"]},
            {"symbol": "TESTUSDT"},
            spec=SPEC | {"archive_top_percent": 50},
            grades=GRADES,
            gates=LENIENT,
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


# -- champion / challenger, predictions and paper of the three chosen kinds (issue 17) ----------------------
def _packaged(run) -> dict[str, Path]:
    """{"agent": the chosen agent's folder, "agent_ensemble": ..., "hybrid": ...} of the packaged models."""
    chosen = artifacts.read_json(run["test"])["code"]
    out = {"agent": run["packaged"] / chosen}
    for folder in run["packaged"].iterdir():
        if folder.is_dir() and load_folder(folder).model_type in ("agent_ensemble", "hybrid"):
            out[load_folder(folder).model_type] = folder
    return out


def test_the_chosen_agent_the_ensemble_and_the_hybrid_carry_validation_evidence(run):
    """validation_returns.json in the supervised line's format: the policy's per-bar after-cost returns on
    the bars it was chosen on (the hybrid: after the ones it trained on), stamped with the bar whose close
    realises them, its trades inside those bars, the same metrics as its validation score, a gate verdict."""
    from workflow_scripts.evaluation.evidence import EVIDENCE_FILE, epoch_seconds
    from workflow_scripts.registry import store as reg

    packaged = _packaged(run)
    with_evidence = {f.name for f in run["packaged"].iterdir() if (f / EVIDENCE_FILE).is_file()}
    assert with_evidence == {f.name for f in packaged.values()}  # no other trial, not the CNN-LSTM
    secs = epoch_seconds(pd.read_parquet(run["bars"])["timestamp"])
    hybrid_select = artifacts.read_json(run["hybrid"]["result"])["hybrid"]["segments"]["select"]
    expected = {"agent": (560, 720), "agent_ensemble": (560, 720), "hybrid": tuple(hybrid_select)}
    claimed = {
        "agent": artifacts.read_json(run["test"])["validation"],
        "agent_ensemble": artifacts.read_json(run["ensemble"] / "agent_ensemble.json")["choice"]["chosen"][
            "validation"
        ],
        "hybrid": artifacts.read_json(run["hybrid"]["result"])["best"]["validation"],
    }
    for kind, folder in packaged.items():
        doc = artifacts.read_json(folder / EVIDENCE_FILE)
        lo, hi = expected[kind]
        assert (doc["segment"], doc["lo"], doc["hi"]) == ("validation", lo, hi), kind
        assert doc["timestamps_s"] == secs[lo + 1 : hi].tolist()  # one return per step, none after hi - 1
        assert doc["gate"]["profile"] == "lenient" and doc["in_sample_fit"] is False
        # the replay of the exported policy is the validation score the choice was made on (a continuous
        # policy's TorchScript positions agree with SB3's to float32 precision: parity <= 1e-5)
        after = doc["after_costs"]
        assert after["n_trades"] == claimed[kind]["n_trades"] == len(doc["trades"]), kind
        assert after["total_return"] == pytest.approx(claimed[kind]["total_return"], abs=1e-6), kind
        assert np.prod(1 + np.asarray(doc["returns"])) - 1 == pytest.approx(after["total_return"], abs=1e-12)
        vin = artifacts.read_json(folder / "metrics.json")["vin"]
        evidence = reg.read_evidence(folder, vin)  # what the registry and lifecycle/compare.py read
        assert evidence.usable and evidence.source == "validation"
        assert len(evidence.on(evidence.timestamps).trades) == len(evidence.trades)  # trades inside its bars


COMPARE = {"alpha": 0.05, "min_bars": 50, "min_trades": 0}
REGISTRY_SPEC = {"promote_gate_profiles": ["lenient"], "compare": COMPARE}


def _registered(run, registry) -> dict:
    """The run's production folders and packaged RL models registered; {model type: [VIN]}."""
    from workflow_scripts.registry import runs
    from workflow_scripts.registry import store as reg

    for folder in run["production"]:  # what the hybrid was built on (register_models in the workflow)
        reg.register(registry, folder, keep_identical=True)
    by_type: dict[str, list[str]] = {}
    for m in runs.register_agents(registry, run["packaged"])["models"]:
        by_type.setdefault(m["model_type"], []).append(m["vin"])
    return by_type


def test_agents_compete_in_their_own_slot_on_the_same_validation_bars(run, tmp_path):
    """The supervised line's rules unchanged (runs.decide, store.promote, eligibility): the chosen agent, the
    ensemble and the hybrid are judged on their validation evidence in the symbol's "both" slot (never the
    swing classifiers' high / low slots), compared on the bars they share; a policy without evidence and the
    CNN-LSTM are refused for the reason the registry gives every model without evidence."""
    from workflow_scripts.registry import runs
    from workflow_scripts.registry import store as reg

    registry = tmp_path / "registry"
    by_type = _registered(run, registry)
    index = reg.read_index(registry)["models"]
    packaged = {k: artifacts.read_json(f / "metrics.json")["vin"] for k, f in _packaged(run).items()}
    for vin in packaged.values():
        passed, profile, basis = reg.eligibility(index[vin])
        assert (profile, basis) == ("lenient", "validation")
        assert index[vin]["validation"]["bars"]["count"] > 50
    others = [v for v in by_type["agent"] if v not in packaged.values()] + by_type["cnn_lstm"]
    assert others and all(reg.eligibility(index[v])[2] == reg.NO_EVIDENCE for v in others)
    entries = [index[v] for v in [*packaged.values(), *others]]
    decisions = {d["vin"]: d for d in runs.decide(registry, entries, REGISTRY_SPEC, "run-agents")}
    for vin in others:
        assert (
            decisions[vin]["decision"] == "rejected" and "no validation evidence" in decisions[vin]["reason"]
        )
    eligible = [v for v in packaged.values() if reg.eligibility(index[v])[0]]
    assert eligible, "no packaged agent passed the lenient gate: the fixture's agents never trade"
    champions = reg.read_champions(registry, "TESTUSDT")["sides"]
    assert set(champions) == {"both"}  # the agents' own slot; the production models stay unjudged here
    champion = champions["both"]["champion"]
    assert champion in eligible and decisions[champion]["decision"] == "champion"
    for vin in eligible:
        if vin == champion:
            continue
        d = decisions[vin]
        assert d["decision"] in ("challenger", "champion")
        evidence = d["evidence"]
        assert evidence["source"] == "validation" and "test" in evidence
        ours, theirs = reg.load_evidence(registry, vin), reg.load_evidence(registry, d["previous_champion"])
        common = np.intersect1d(ours.timestamps, theirs.timestamps)
        assert evidence["bars"]["count"] == len(common) >= COMPARE["min_bars"]  # the same bars for both


def test_register_agent_models_decides_the_agent_slot_itself(run, tmp_path):
    """The rule's entry (runs.register_agents with the registry config) judges the packaged models that carry
    evidence, and only those, exactly as runs.decide does by hand; registering the same folders again decides
    nothing new."""
    from workflow_scripts.registry import runs
    from workflow_scripts.registry import store as reg

    by_hand, in_rule = tmp_path / "by_hand", tmp_path / "in_rule"
    _registered(run, by_hand)
    index = reg.read_index(by_hand)["models"]
    vins = [artifacts.read_json(f / "metrics.json")["vin"] for f in _packaged(run).values()]
    runs.decide(by_hand, [index[v] for v in vins], REGISTRY_SPEC, "run-agents")

    for folder in run["production"]:
        reg.register(in_rule, folder, keep_identical=True)
    record = runs.register_agents(in_rule, run["packaged"], REGISTRY_SPEC)
    assert sorted(d["vin"] for d in record["decisions"]) == sorted(
        vins
    )  # trials and the CNN-LSTM: not judged
    assert (
        reg.read_champions(in_rule, "TESTUSDT")["sides"]["both"]["champion"]
        == (reg.read_champions(by_hand, "TESTUSDT")["sides"]["both"]["champion"])
    )
    statuses = {m["vin"]: m["status"] for m in record["models"]}
    assert {statuses[v] for v in vins} <= {"champion", "challenger", "rejected"}
    again = runs.register_agents(in_rule, run["packaged"], REGISTRY_SPEC)
    assert again["decisions"] == [] and again["models"] == record["models"]


def test_swingflow_promote_judges_an_agent_by_the_same_rule(run, tmp_path, capsys):
    """`swingflow registry promote <agent VIN>` is runs.decide with the registry config: its evidence under
    a gate profile that may not promote is rejected by name; scores meant for class probabilities are
    refused."""
    from workflow_scripts.ops.cli import main

    registry = tmp_path / "registry"
    _registered(run, registry)
    vin = artifacts.read_json(_packaged(run)["agent"] / "metrics.json")["vin"]
    args = ["--registry", str(registry), "--json", "registry", "promote", vin]
    assert main(args) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["decision"] == "rejected" and decision["side"] == "both"
    assert decision["reason"] in (
        "gate profile 'lenient' may not promote (allowed: ['strict'])",  # the default config's profiles
        "gate 'lenient' not passed (validation)",
    )
    assert main([*args, "--scores", str(tmp_path / "scores.json")]) == 1
    assert "judged on its validation evidence, not on --scores / --data" in capsys.readouterr().err


def _champion(run, registry) -> str:
    """The packaged models registered and judged (lenient gate); the symbol's agent champion."""
    from workflow_scripts.registry import predictions as pr
    from workflow_scripts.registry import runs
    from workflow_scripts.registry import store as reg

    _registered(run, registry)
    index = reg.read_index(registry)["models"]
    vins = [artifacts.read_json(f / "metrics.json")["vin"] for f in _packaged(run).values()]
    runs.decide(registry, [index[v] for v in vins], REGISTRY_SPEC, "run-agents")
    champion = pr.agent_champion(registry, "TESTUSDT")
    assert champion in vins
    return champion


def test_an_agent_champion_predicts_positions_not_class_probabilities(run, tmp_path, capsys):
    """Refused where class probabilities are asked for (by VIN and kind; the workflow's predict_batch gets
    an empty table, not a failure); `swingflow predict` writes its positions: its policy replayed on the bars
    after its last bar, the paper replay's positions, each fixed by the bars up to it."""
    import re

    from workflow_scripts.agents import paper as agent_paper
    from workflow_scripts.ops.cli import main
    from workflow_scripts.registry import predictions as pr
    from workflow_scripts.registry import store as reg

    registry = tmp_path / "registry"
    champion = _champion(run, registry)
    features = pd.read_parquet(run["features"])
    with pytest.raises(reg.RegistryError, match=rf"model {re.escape(champion)} is a \w+ \(model type \w+\)"):
        pr.predict_frame(reg.load_model(registry, champion), features)
    assert pr.batch_from_file(registry, "TESTUSDT", run["features"]).empty
    with pytest.raises(reg.RegistryError, match=r"no class-probability champion.*\(its agent champion"):
        pr.champion_models(registry, "TESTUSDT")
    bars_dir, features_dir = _appended(run, tmp_path, 30)
    bars, table = (
        pd.read_parquet(bars_dir / "TESTUSDT.parquet"),
        pd.read_parquet(features_dir / "TESTUSDT.parquet"),
    )
    positions = pr.agent_positions(registry, champion, bars, table)
    assert positions["timestamp"].tolist() == pd.to_datetime(bars["timestamp"].iloc[-30:], utc=True).tolist()
    assert set(positions["vin"]) == {champion} and positions["position"].between(-1, 1).all()
    model = reg.load_model(registry, champion, model="deployed")
    cfg, part, obs = pr.agent_replay_inputs(registry, model, bars, table)
    paper = agent_paper.paper_record(
        pr.agent_policy(model, cfg),
        obs,
        part,
        cfg["last_bar"],
        env=cfg["env"],
        costs=artifacts.read_json(model.folder / "costs.json"),
        sigma_bars=cfg["sigma_bars"],
    )
    assert positions["position"].tolist()[:28] == paper["positions"]
    fewer = pr.agent_positions(registry, champion, bars.iloc[:-10], table)  # causal: a prefix
    np.testing.assert_array_equal(fewer["position"], positions["position"].iloc[:20])
    out = tmp_path / "predictions"
    argv = ["--registry", str(registry), "--json", "predict", "--symbol", "TESTUSDT", "--out", str(out)]
    assert main([*argv, "--features", str(features_dir), "--bars", str(bars_dir)]) == 0
    row = json.loads(capsys.readouterr().out)
    assert [(r["mode"], r["rows"]) for r in row] == [("positions", 30)]
    pd.testing.assert_frame_equal(pd.read_parquet(out / "TESTUSDT.positions.parquet"), positions)
    cnn = next(v for v, e in reg.read_index(registry)["models"].items() if e["model_type"] == "cnn_lstm")
    with pytest.raises(reg.RegistryError, match=rf"model {cnn} is a cnn_lstm \(model type cnn_lstm\): not a"):
        pr.agent_positions(registry, cnn, bars, table)


def test_the_ensemble_and_the_hybrid_paper_trade_appended_bars(run, tmp_path):
    """Both deployed by VIN and paper-traded like the single agent: the ensemble replays its members'
    TorchScript policies combined as in its evaluation, the hybrid observes its production models'
    probabilities of each new bar (the same observation as in its study); append-only and idempotent, and
    a ledger grown in two calls equals one written at once. A hybrid whose production models are not in
    the registry is refused by name."""
    from workflow_scripts.agents.hybrid import production_probabilities
    from workflow_scripts.lifecycle import paper
    from workflow_scripts.registry import paper_trading
    from workflow_scripts.registry import predictions as pr
    from workflow_scripts.registry import store as reg

    registry = tmp_path / "registry"
    _registered(run, registry)
    vins = {k: artifacts.read_json(f / "metrics.json")["vin"] for k, f in _packaged(run).items()}
    reg.deploy(registry, 3, vins["agent_ensemble"])
    reg.deploy(registry, 4, vins["hybrid"])
    bars_dir, features_dir = _appended(run, tmp_path, 60)
    ledger = tmp_path / "ledger"
    first = paper_trading.paper_trade(registry, bars_dir, ledger, features_dir=features_dir)
    assert [(r["slot"], r["vin"], r["evidence"]["n_bars"]) for r in first] == [
        (3, vins["agent_ensemble"], 58),
        (4, vins["hybrid"], 58),
    ]
    snap = {
        s: {n: (paper.ledger_path(ledger, s, v) / n).read_bytes() for n in paper.LEDGER_FILES}
        for s, v in ((3, vins["agent_ensemble"]), (4, vins["hybrid"]))
    }
    again = paper_trading.paper_trade(registry, bars_dir, ledger, features_dir=features_dir)
    assert [r["appended"] for r in again] == [{"bars": 0, "trades": 0}] * 2
    for s, files in snap.items():
        v = vins["agent_ensemble"] if s == 3 else vins["hybrid"]
        assert {n: (paper.ledger_path(ledger, s, v) / n).read_bytes() for n in paper.LEDGER_FILES} == files
    # grown in two calls (40 bars, then 60) = written at once: no past line depends on a later bar
    short = tmp_path / "short"
    short.mkdir()
    pd.read_parquet(bars_dir / "TESTUSDT.parquet").iloc[:-20].to_parquet(short / "TESTUSDT.parquet")
    grown = tmp_path / "grown"
    paper_trading.paper_trade(registry, short, grown, features_dir=features_dir)
    paper_trading.paper_trade(registry, bars_dir, grown, features_dir=features_dir)
    for s, v in ((3, vins["agent_ensemble"]), (4, vins["hybrid"])):
        equity = paper.EQUITY_FILE
        assert (paper.ledger_path(grown, s, v) / equity).read_bytes() == snap[s][equity]
    # the hybrid's paper observation is its study's: embeddings and the production models' probabilities
    model = reg.load_model(registry, vins["hybrid"], model="deployed")
    cfg = pr.check_policy(model)
    bars, table = pd.read_parquet(run["bars"]), pd.read_parquet(run["features"])
    obs = pr.agent_observation(registry, model, cfg, bars.iloc[600:], table)
    recorded = pd.concat(
        [
            pd.read_parquet(run["cnn"]["embeddings"]).filter(like="cnn_lstm_"),
            production_probabilities(dict(zip(("high", "low"), run["production"])), run["features"]),
        ],
        axis=1,
    )[cfg["observation"]["features"]].to_numpy()[600:]
    mean, std = np.asarray(cfg["observation"]["mean"]), np.asarray(cfg["observation"]["std"])
    np.testing.assert_allclose(obs[50:], ((recorded - mean) / std)[50:], atol=1e-5)  # past the windows' start
    # without its production models in the registry, the hybrid is refused by name
    bare = tmp_path / "bare"
    from workflow_scripts.registry import runs

    runs.register_agents(bare, run["packaged"])
    reg.deploy(bare, 1, vins["hybrid"])
    with pytest.raises(
        reg.RegistryError, match=r"its high production model LGBM-TEST-HIGH is not in the regi"
    ):
        paper_trading.paper_trade(bare, bars_dir, tmp_path / "l3", features_dir=features_dir)
