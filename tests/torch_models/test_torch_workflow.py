"""Issue 9 through Snakemake on a tiny real config (sandbox copy): model=torch_mlp with encoder=autoencoder
and ensemble=enabled, from raw bars through register_models. One run serves every test."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.sandbox import copy_workflow
from tests.workflow.conftest import LOOSE_REGISTRY_RUN, TINY, planned_jobs, snakemake
from workflow_scripts import artifacts
from workflow_scripts.evaluation.metrics import macro_average_precision
from workflow_scripts.lifecycle.compare import MEASURE
from workflow_scripts.registry import store as reg

pytestmark = pytest.mark.slow

SYMBOLS, WINDOWS, SIDES = ("BTCUSDT", "ETHUSDT"), (5, 20), ("high", "low")
# LOOSE_REGISTRY_RUN and 3 epochs: the wiring is what is tested.
OVERRIDES = [
    *LOOSE_REGISTRY_RUN,
    "model.max_epochs=3",
    "encoder.params.max_epochs=3",
]
GROUPS = ["model=torch_mlp", "encoder=autoencoder", "ensemble=enabled"]


def config(*groups: str) -> list[str]:
    return [
        *TINY[:-1],
        "gates=exploratory",
        *groups,
        "overrides=[" + ",".join(f'"{o}"' for o in OVERRIDES) + "]",
    ]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    wf = copy_workflow(tmp_path_factory.mktemp("torch_wf") / "wf")
    snakemake(
        wf,
        "results/registry/run_status.json",
        "results/predictions/BTCUSDT.parquet",
        config=config(*GROUPS),
        timeout=3000,
    )
    return wf


def test_autoencoder_is_fitted_on_training_rows_and_recorded_by_every_head(ran):
    res = ran / "results"
    path = res / "encoder" / "autoencoder.json"
    doc = artifacts.read_json(path)
    version = artifacts.sha256_file(path)
    expected_rows = 0
    for symbol in SYMBOLS:
        splits = [artifacts.read_json(res / f"splits/{symbol}/w{w}.json") for w in WINDOWS]
        expected_rows += min(s["train"]["hi"] for s in splits) - max(s["train"]["lo"] for s in splits)
    assert doc["format"] == "swingflow-autoencoder-encoder/2" and doc["n_train_rows"] == expected_rows
    base = pd.read_parquet(res / "features/base/BTCUSDT.parquet")
    assert doc["columns"] == [c for c in base.columns if c != "timestamp"]
    for symbol in SYMBOLS:
        for w in WINDOWS:
            for side in SIDES:
                folder = res / f"production/{symbol}/w{w}/{side}"
                cfg = artifacts.read_json(folder / "config.json")
                assert cfg["dependencies"]["encoder_version"] == version
                assert artifacts.sha256_file(folder / "encoder.json") == version
                feats = artifacts.read_json(folder / "features.json")
                assert feats["encoder"]["columns"] == doc["output_columns"]
                assert feats["features"][-len(doc["output_columns"]) :] == doc["output_columns"]


def test_torch_folders_verify_register_and_load(ran):
    res = ran / "results"
    registry_dir = ran / "registry" / "integration-test"
    index = reg.read_index(registry_dir)
    frame = pd.read_parquet(res / "features/BTCUSDT.parquet")
    for w in WINDOWS:
        for side in SIDES:
            folder = res / f"production/BTCUSDT/w{w}/{side}"
            hashes = reg.verify_folder(folder)
            assert {"model.pt", "metadata.json", "feature_spec.json"} <= set(hashes)
            meta = reg.read_model_meta(folder)
            assert meta["model_type"] == "torchscript" and meta["vin"] in index["models"]
            loaded = reg.load_model(registry_dir, meta["vin"])
            proba = loaded.predict_proba(frame)  # the symbol's features; the encoder columns it adds itself
            assert proba.shape == (len(frame), 3) and abs(proba.sum(axis=1) - 1).max() < 1e-5
            # ... the same probabilities training recorded on the test rows (metrics.json test AP reproduced).
            labels = pd.read_parquet(res / f"targets/BTCUSDT/w{w}.parquet")[meta["target"]].to_numpy()
            test_rows = artifacts.read_json(folder / "split_indices.json")["test"]
            recorded = artifacts.read_json(folder / "metrics.json")["test_average_precision"]
            assert (
                abs(macro_average_precision(labels[test_rows].astype(int), proba[test_rows]) - recorded)
                < 1e-6
            )
    # Every registered model of the symbol, the ensembles included, predicts from the symbol's features alone
    # (its encoder columns derived by itself).
    vins = [v for v, e in index["models"].items() if e["symbol"] == "BTCUSDT"]
    assert len(vins) == 6
    for vin in vins:
        proba = reg.load_model(registry_dir, vin).predict_proba(frame)
        assert proba.shape == (len(frame), 3) and abs(proba.sum(axis=1) - 1).max() < 1e-5, vin


def test_ensembles_are_built_registered_and_loaded(ran):
    res = ran / "results"
    registry_dir = ran / "registry" / "integration-test"
    index = reg.read_index(registry_dir)
    status = artifacts.read_json(res / "registry/run_status.json")
    registered = set().union(*(s["registered"] for s in status["symbols"].values()))
    for symbol in SYMBOLS:
        for side in SIDES:
            folder = res / f"ensemble/{symbol}/{side}"
            reg.verify_folder(folder)
            meta = reg.read_model_meta(folder)
            cfg = artifacts.read_json(folder / "config.json")
            metrics = artifacts.read_json(folder / "metrics.json")
            assert (
                meta["model_type"] == "ensemble"
                and meta["vin"] in index["models"]
                and meta["vin"] in registered
            )
            assert cfg["side"] == side and [m["name"] for m in cfg["members"]] == [f"w{w}" for w in WINDOWS]
            for m in cfg["members"]:  # members are the production folders, identified by VIN and model hash
                src = res / f"production/{symbol}/{m['name']}/{side}"
                assert m["vin"] == reg.read_model_meta(src)["vin"]
                assert m["sha256"] == artifacts.sha256_file(src / "model.pt")
                assert reg.verify_folder(folder / "members" / m["name"]) == reg.verify_folder(src)
            ref = res / f"production/{symbol}/{cfg['reference_member']}/{side}"
            assert cfg["target"] == artifacts.read_json(ref / "config.json")["target"]
            assert metrics["gate"]["profile"] == "exploratory" and "grade" in metrics["grade"]
            assert metrics["ensemble_validation_scores"]["chosen"] in ("average", "stacker")
            assert metrics["dsr_trials"]["n_trials"] >= 4
    # The registry loads an ensemble and predicts through its members.
    folder = res / "ensemble/BTCUSDT/high"
    vin = reg.read_model_meta(folder)["vin"]
    loaded = reg.load_model(registry_dir, vin)
    table = pd.read_parquet(res / "features/BTCUSDT.parquet")  # encoder columns: added by the loaded model
    proba = loaded.predict_proba(table)
    assert proba.shape == (len(table), 3) and abs(proba.sum(axis=1) - 1).max() < 1e-6
    # ... and reproduces the test-segment macro AP that fit_ensemble recorded (registry path == training
    # path).
    cfg = artifacts.read_json(folder / "config.json")
    labels = pd.read_parquet(res / f"targets/BTCUSDT/w{cfg['window']}.parquet")[cfg["target"]].to_numpy()
    test_rows = artifacts.read_json(folder / "split_indices.json")["test"]
    recorded = artifacts.read_json(folder / "metrics.json")["test_average_precision"]
    assert len(test_rows) > 0
    assert abs(macro_average_precision(labels[test_rows].astype(int), proba[test_rows]) - recorded) < 1e-9


def test_ensemble_switch_reruns_only_its_readers(ran):
    """Switching the ensemble stage off plans register_models (its input list shrinks) and the production
    heads' evaluation (evaluate_production, no refit): their DSR counts the slot's ensemble candidates
    (docs/LIFECYCLE.md), which drop from 2 to 0. Nothing upstream (stage 1, tuning, the encoder) is
    replanned."""
    plan = planned_jobs(snakemake(ran, "results/registry/run_status.json", "-n", config=config(*GROUPS[:2])))
    assert plan == {"evaluate_production": 4, "register_models": 1}  # 2 coins x 2 windows, both sides each


def test_predict_batch_serves_the_encoder_and_ensemble_champions(ran):
    """predict_batch reads the symbol's feature table; champions derive their encoder columns themselves."""
    registry_dir = ran / "registry" / "integration-test"
    preds = pd.read_parquet(ran / "results/predictions/BTCUSDT.parquet")
    champions = reg.read_champions(registry_dir, "BTCUSDT")["sides"]
    assert set(preds["side"]) == set(champions) == set(SIDES)
    # Every challenger records the same-bars comparison with the champion (docs/LIFECYCLE.md).
    assert all(
        c["evidence"]["measure"] == MEASURE and c["evidence"]["why"]
        for slot in champions.values()
        for c in slot["challengers"]
    )
    bars = len(pd.read_parquet(ran / "results/features/BTCUSDT.parquet", columns=["timestamp"]))
    assert len(preds) == bars * len(SIDES)
    probs = preds[["p_neither", "p_breakout", "p_reversion"]].to_numpy()
    assert abs(probs.sum(axis=1) - 1).max() < 1e-5
