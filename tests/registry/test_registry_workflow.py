"""The registry stage in a real tiny workflow run (sandbox copy): evaluate_production -> register_models ->
predict_batch, then a rerun with nothing new leaves the registry untouched."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from tests.sandbox import copy_workflow
from tests.workflow.conftest import LOOSE_REGISTRY_RUN, TINY, planned_jobs, snakemake
from workflow_scripts import artifacts
from workflow_scripts.models.folder import NO_MODEL_FILE, no_model
from workflow_scripts.registry import store as reg
from workflow_scripts.training.combination import no_model_reason

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
    assert set(status) == {"run", "symbols", "no_model"} and set(status["symbols"]) == set(SYMBOLS)
    assert status["no_model"] == []  # every side has a model here
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


def _best_class_rows(res, symbol: str, window: int, side: str) -> int:
    """The most rows of its rarest class (training and validation) that a trained variant of the side has:
    with stage1.min_class_rows above it, every variant of the side is skipped (training/stage1.py)."""
    choice = artifacts.read_json(res / f"best_variant/{symbol}/w{window}/{side}.json")
    rarest = []
    for v in choice["variants_ranked"]:
        if v["status"] == "trained":
            counts = artifacts.read_json(res / f"stage1/{symbol}/w{window}/{v['target']}/metrics.json")
            rarest.append(min(min(counts["class_counts"][seg].values()) for seg in ("train", "validation")))
    return max(rarest)


def test_a_side_left_without_a_stage1_variant_by_its_data_is_carried_through_as_no_model(ran, tmp_path):
    """stage1.min_class_rows one above the smallest side's best rarest-class count: the data leaves that side
    without a trained variant; the run goes on, and the side is no model everywhere, listed, never
    registered."""
    res = ran / "results"
    sides = [(s, w, d) for s in SYMBOLS for w in (5, 20) for d in ("high", "low")]
    best = {k: _best_class_rows(res, *k) for k in sides}
    floor = min(best.values()) + 1
    gone = sorted(k for k, n in best.items() if n < floor)
    assert len(gone) < len(sides), f"every side would be knocked out: {best}"
    wf = shutil.copytree(ran, tmp_path / "wf", symlinks=True)
    extra = ["results/production/summary.md", "results/report/evaluation.html"]
    snakemake(wf, *TARGETS, *extra, config=config(f"stage1.min_class_rows={floor}"), timeout=1800)
    res = wf / "results"
    status = artifacts.read_json(res / "registry/run_status.json")
    registry_dir = wf / "registry" / "integration-test"
    index = reg.read_index(registry_dir)["models"]
    this_run = {
        (index[v]["symbol"], index[v]["window"], index[v]["side"])
        for s in status["symbols"].values()
        for v in s["registered"]
    }
    assert this_run == set(sides) - set(gone)
    summary = (res / "production/summary.md").read_text()
    assert f"Production models: {len(sides) - len(gone)} (symbol, window, side)" in summary
    assert f"Without a model (never registered): {len(gone)} (symbol, window, side)" in summary
    for symbol, window, side in gone:
        choice = artifacts.read_json(res / f"best_variant/{symbol}/w{window}/{side}.json")
        reason = no_model_reason(choice)
        assert choice["best"] is None and f"stage1.min_class_rows={floor}" in reason
        for stage in ("stage3", "stage4"):
            result = artifacts.read_json(res / f"tuning/{stage}/{symbol}/w{window}/{side}.json")
            assert result["no_model"] == reason and result["finished_trials"] == 0
        record = {"symbol": symbol, "window": window, "side": side, "reason": reason}
        for kind in ("production_fit", "production"):
            folder = res / f"{kind}/{symbol}/w{window}/{side}"
            files = [p.name for p in folder.iterdir() if p.name != ".snakemake_timestamp"]  # Snakemake's
            assert files == [NO_MODEL_FILE] and no_model(folder) == record
        assert record | {"folder": f"results/production/{symbol}/w{window}/{side}"} in status["no_model"]
        assert f"- {symbol} w{window} {side}: {reason}" in summary
        # the side's slot in its other window counts no trial from this one (training/trials.py)
        other = res / f"production/{symbol}/w{25 - window}/{side}"
        if no_model(other) is None:
            counted = artifacts.read_json(other / "metrics.json")["dsr_trials"]["by_window"][str(window)]
            assert counted["stage1_variants"] == counted["stage3"] == counted["stage4"] == 0
    assert len(status["no_model"]) == len(gone)
    for symbol, window, side in sorted(set(sides) - set(gone)):
        reg.verify_folder(res / f"production/{symbol}/w{window}/{side}")
