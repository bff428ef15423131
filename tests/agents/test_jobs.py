"""The three rule entries on small files: CNN-LSTM -> agent studies (PPO and SAC) -> one test evaluation."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd

from tests.agents.conftest import COSTS
from tests.conftest import hourly
from workflow_scripts import artifacts
from workflow_scripts.agents import jobs, trial_code
from workflow_scripts.config.schema import config_group
from workflow_scripts.evaluation.costs import snapshot_of
from workflow_scripts.job import Job

N = 900
SPEC = {
    "sigma_bars": 24,
    "seed": 0,
    "cnn_lstm": {
        "seq_len": 8,
        "conv_channels": 4,
        "hidden": 8,
        "embedding_dim": 3,
        "max_epochs": 2,
        "device": "cpu",
        "horizon": 3,
    },
    "env": {"episode_bars": 64},
    "agent": {"total_timesteps": 128, "n_steps": 64, "learning_starts": 32},
    "study": {
        "trials": 2,
        "minutes": None,
        "seed": 1,
        "sampler": "tpe",
        "objective": "sharpe_per_trade",
        "min_trades": 0,
        "stale_after_s": 3600,
    },
    "space": {"net_width": {"choices": [8, 16]}, "lookback": {"choices": [1, 2]}},
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


def test_cnn_lstm_then_studies_then_one_test_evaluation(tmp_path):
    p = _files(tmp_path)
    out = tmp_path / "results"
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
    meta = artifacts.read_json(cnn["metadata"])
    assert meta["feature_names"] == ["f0", "f2"] and meta["parity_max_abs_diff"] <= 1e-5
    assert list(pd.read_parquet(cnn["embeddings"]).columns) == [
        "timestamp",
        "cnn_lstm_0",
        "cnn_lstm_1",
        "cnn_lstm_2",
    ]
    common = {
        "embeddings": cnn["embeddings"],
        "bars": p["bars.parquet"],
        "split": p["split.json"],
        "costs": p["costs.json"],
    }
    studies, models = [], []
    for kind in ("ppo", "sac"):
        result, model = out / f"study/{kind}.json", out / f"study/{kind}.zip"
        jobs.tune_agent(
            _job(
                "agents.tune_agent",
                common,
                {"result": result, "model": model},
                {"symbol": "TESTUSDT", "agent": kind},
                spec=SPEC,
                grades=GRADES,
            )
        )
        study = artifacts.read_json(result)
        assert study["n_trials"] == 2 and study["kind"] == kind
        assert trial_code.decode(study["chosen"]["code"])["type"] == kind.upper()
        assert result.with_suffix(".journal").exists()
        studies.append(result)
        models.append(model)
    test_out = out / "test.json"
    jobs.evaluate_agent(
        _job(
            "agents.evaluate_agent",
            common | {"studies": studies, "models": models},
            {"result": test_out},
            {"symbol": "TESTUSDT"},
            spec=SPEC,
            grades=GRADES,
            gates=GATES,
        )
    )
    result = json.loads(test_out.read_text())
    assert result["scored_on"] == "test" and result["segment"] == {"lo": 740, "hi": 900, "n_steps": 159}
    assert result["sharpe_tests"]["n_trials"] == 4
    assert result["gate"]["profile"] == "strict"
    assert result["kind"] in ("ppo", "sac")
