"""The registry stage in a real tiny workflow run (sandbox copy): evaluate_production -> register_models ->
predict_batch, then a rerun with nothing new leaves the registry untouched."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.sandbox import copy_workflow
from tests.workflow.conftest import LOOSE_REGISTRY_RUN, TINY, planned_jobs, snakemake
from workflow_scripts import artifacts
from workflow_scripts.registry import store as reg

pytestmark = pytest.mark.slow

SYMBOLS = ("BTCUSDT", "ETHUSDT")
# The registry stage is what is tested here.
OVERRIDES = LOOSE_REGISTRY_RUN


def config(*extra: str) -> list[str]:
    return [
        *TINY[:-1],
        "gates=exploratory",
        "overrides=[" + ",".join(f'"{o}"' for o in (*OVERRIDES, *extra)) + "]",
    ]


CONFIG = config()
TARGETS = ["results/registry/run_status.json", *(f"results/predictions/{s}.parquet" for s in SYMBOLS)]


def _files(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("registry_wf") / "wf")
    snakemake(workdir, *TARGETS, config=CONFIG, timeout=1800)
    return workdir


def test_register_models_and_predict_batch(ran):
    registry_dir = ran / "registry" / "integration-test"  # env=integration-test: env.storage.registry_dir
    status = artifacts.read_json(ran / "results" / "registry" / "run_status.json")
    folders = sorted((ran / "results" / "production").glob("*/w*/*"))
    assert len(folders) == len(SYMBOLS) * 2 * 2  # symbols x windows (5, 20) x sides
    index = reg.read_index(registry_dir)
    vins = {reg.read_model_meta(f)["vin"] for f in folders}
    assert set(index["models"]) == vins
    assert set().union(*(s["registered"] for s in status["symbols"].values())) == vins
    assert all(r["ok"] for r in reg.verify_registry(registry_dir))
    assert set(status) == {"run", "symbols"} and set(status["symbols"]) == set(SYMBOLS)
    assert (registry_dir / "runs" / status["run"] / "status.json").is_file()
    assert (registry_dir / "summary" / status["run"] / "engine_summary.json").is_file()
    roster = artifacts.read_json(ran / "results" / "registry" / "roster.json")
    assert roster["run"] == status["run"] and roster["champions"] == reg.roster(registry_dir)
    for symbol, s in status["symbols"].items():
        assert s["changed"] is bool(s["champion"])  # a first run: any champion is a change
        for side, vin in s["champion"].items():
            e = index["models"][vin]
            assert (
                e["status"] == "champion" and e["gate_passed"] and (e["symbol"], e["side"]) == (symbol, side)
            )
        preds = pd.read_parquet(ran / "results" / "predictions" / f"{symbol}.parquet")
        rows = len(pd.read_parquet(ran / "results" / "features" / f"{symbol}.parquet", columns=["timestamp"]))
        assert list(preds.columns) == ["timestamp", "vin", "side", "p_neither", "p_breakout", "p_reversion"]
        assert len(preds) == rows * len(s["champion"]) and set(preds["vin"]) == set(s["champion"].values())
    assert any(s["champion"] for s in status["symbols"].values()), (
        "no champion at all: the test shows too little"
    )


def test_rerun_with_nothing_new_leaves_the_registry_alone(ran):
    registry_dir = ran / "registry" / "integration-test"
    assert planned_jobs(snakemake(ran, "-n", *TARGETS, config=CONFIG)) == {}
    before = _files(registry_dir)
    first = artifacts.read_json(ran / "results" / "registry" / "run_status.json")
    preds = {s: (ran / "results" / "predictions" / f"{s}.parquet").read_bytes() for s in SYMBOLS}
    snakemake(ran, *TARGETS, "-R", "register_models", config=CONFIG)
    assert _files(registry_dir) == before
    again = artifacts.read_json(ran / "results" / "registry" / "run_status.json")
    assert again["run"] == first["run"] and all(not s["changed"] for s in again["symbols"].values())
    assert {k: v["champion"] for k, v in again["symbols"].items()} == {
        k: v["champion"] for k, v in first["symbols"].items()
    }
    assert {s: (ran / "results" / "predictions" / f"{s}.parquet").read_bytes() for s in SYMBOLS} == preds


def test_registry_config_change_reruns_only_the_registry_stage(ran):
    jobs = planned_jobs(snakemake(ran, "-n", *TARGETS, config=config("registry.compare.alpha=0.01")))
    assert jobs == {"register_models": 1, "predict_batch": len(SYMBOLS)}
