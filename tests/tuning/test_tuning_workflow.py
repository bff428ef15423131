"""Tuning stages 2-4, the shared encoder and production training through Snakemake, on a tiny real config.

One sandbox run (module fixture) serves every test: the tiny universe through production with LightGBM, then
dry runs of config changes, the encoder rule, and one production folder retrained with model=xgboost.
"""

import json
import shutil

import pandas as pd
import pytest
import yaml

from tests.sandbox import copy_workflow
from tests.workflow.conftest import TINY, planned_jobs, snakemake
from workflow_scripts import artifacts
from workflow_scripts.registry import store as registry
from workflow_scripts.training import tuning

pytestmark = pytest.mark.slow

# One trial per study: stage 2 (one study per window), stages 3 and 4 (one per combination). The tiny span
# has ~800-1500 train + validation rows per combination: 5 folds need a smaller minimum per fold.
OVERRIDES = [
    "features.lookbacks=[5,21]",
    "features.lags=[]",
    "tuning.budget.trials.stage2=1",
    "tuning.cv.min_train_rows=50",
]


def config(*extra, groups=()):
    keys = {e.split("=")[0] for e in extra}
    quoted = ",".join(f'"{o}"' for o in [o for o in OVERRIDES if o.split("=")[0] not in keys] + list(extra))
    return TINY[:3] + list(groups) + [f"overrides=[{quoted}]"]


COMBINATIONS = [(s, w, side) for s in ("BTCUSDT", "ETHUSDT") for w in (5, 20) for side in ("high", "low")]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    wf = copy_workflow(tmp_path_factory.mktemp("tuning") / "wf")
    summary = "results/production/summary.md"
    snakemake(wf, summary, config=config(), timeout=3600)
    res = wf / "results"
    out = {"wf": wf, "res": res}
    bigger = config("tuning.budget.trials.stage2=3")
    out["plan_budget"] = planned_jobs(snakemake(wf, summary, "-n", config=bigger))
    out["plan_xgboost"] = planned_jobs(snakemake(wf, summary, "-n", config=config(groups=["model=xgboost"])))
    out["plan_pca"] = planned_jobs(snakemake(wf, summary, "-n", config=config(groups=["encoder=pca"])))
    snakemake(wf, "results/encoder/pca.json", config=config(groups=["encoder=pca"]))
    one = res / "production/BTCUSDT/w5/high"
    out["lightgbm_copy"] = shutil.copytree(one, wf.parent / "lightgbm_copy")
    snakemake(wf, str(one.relative_to(wf)), config=config(groups=["model=xgboost"]), timeout=1200)
    return out


def test_production_folders_follow_the_registry_contract(run):
    res = run["res"]
    summary = pd.read_parquet(res / "production/summary.parquet")
    assert len(summary) == len(COMBINATIONS)
    assert "Production models: 8" in (res / "production/summary.md").read_text()
    for symbol, window, side in COMBINATIONS:
        folder = res / f"production/{symbol}/w{window}/{side}"
        if (symbol, window) == ("BTCUSDT", 5):
            continue  # retrained with xgboost below (the job of BTCUSDT w5 does both sides)
        registry.verify_folder(folder)
        meta = registry.read_model_meta(folder)
        choice = artifacts.read_json(res / f"best_variant/{symbol}/w{window}/{side}.json")
        assert meta["target"] == choice["best"]["target"] and meta["model_type"] == "lightgbm"
        assert meta["vin"].startswith("LGBM-") and meta["gate_profile"] == "strict"
        assert meta["dependencies"]["data_version"] == artifacts.sha256_file(res / f"ingest/{symbol}.parquet")
        features = artifacts.read_json(folder / "features.json")
        assert (
            features["features"] == artifacts.read_json(res / f"selection/{symbol}/selected.json")["features"]
        )
        assert features["universe"] == ["BTCUSDT", "ETHUSDT"] and features["spec"]["lookbacks"] == [5, 21]
        metrics = artifacts.read_json(folder / "metrics.json")
        # Evaluated like stage 1: threshold from the validation grid, test segment after costs, DSR over every
        # configuration that competed for the (symbol, side) slot: every window's stage-1 variants of the side
        # + one trial per tuning stage and window here (docs/LIFECYCLE.md, trial counting).
        ev = metrics["evaluation"]
        assert ev["threshold_choice"]["threshold"] in (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
        split = artifacts.read_json(res / f"splits/{symbol}/w{window}.json")
        assert ev["segment"]["lo"] == split["test"]["lo"] and ev["costs"]["symbol"] == symbol
        slot = [
            artifacts.read_json(res / f"best_variant/{symbol}/w{w}/{side}.json")
            for w in sorted({w for s, w, d in COMBINATIONS if (s, d) == (symbol, side)})
        ]
        assert metrics["dsr_trials"]["n_trials"] == sum(c["trained"] + 3 for c in slot)
        assert metrics["dsr_trials"]["n_trials"] == ev["sharpe_tests"]["n_trials"]
        assert artifacts.read_json(folder / "costs.json") == artifacts.read_json(res / f"costs/{symbol}.json")
        idx = artifacts.read_json(folder / "split_indices.json")
        assert max(idx["train"]) < split["validation"]["lo"] <= min(idx["validation"])
        assert max(idx["validation"]) < split["test"]["lo"] <= min(idx["test"])
        cfg = artifacts.read_json(folder / "config.json")
        assert (
            cfg["tuned_params"]
            == artifacts.read_json(res / f"tuning/{cfg['tuned_in']}/{symbol}/w{window}/{side}.json")[
                "best_params"
            ]
        )


def test_stage_budgets_are_respected_and_recorded(run):
    res = run["res"]
    cfg = yaml.safe_load((run["wf"] / "config/tuning/default.yaml").read_text())
    cfg["budget"]["trials"]["stage2"] = 1  # as OVERRIDES set it
    for stage, paths in (
        ("stage2", [res / f"tuning/stage2/w{w}.json" for w in (5, 20)]),
        ("stage3", [res / f"tuning/stage3/{s}/w{w}/{d}.json" for s, w, d in COMBINATIONS]),
        ("stage4", [res / f"tuning/stage4/{s}/w{w}/{d}.json" for s, w, d in COMBINATIONS]),
    ):
        budget = tuning.stage_budget(cfg, stage)
        for path in paths:
            r = artifacts.read_json(path)
            assert r["budget"]["n_trials"] == budget["n_trials"] == 1
            # The trial budget binds; the default minutes cap is a safety cap that does not bind here.
            assert r["finished_trials"] == r["budget"]["n_trials"] and r["stopped_by"] == "trial_budget"
            assert r["spent_seconds"] > 0 and r["best_params"] is not None
            assert path.with_suffix(".journal").is_file()  # the study's storage, beside its result
            if stage == "stage2":
                continue
            assert r["rows"]["scored_on"] == r["rows"]["train"] + r["rows"]["validation"]  # no test rows
            assert len(r["folds"]) == 5
    # Stage 3 starts at its window's stage-2 best.
    s2 = artifacts.read_json(res / "tuning/stage2/w5.json")
    s3 = artifacts.read_json(res / "tuning/stage3/ETHUSDT/w5/low.json")
    assert s3["trials"][0]["params"] == s2["best_params"] and s3["previous_best_params"] == s2["best_params"]


def test_config_changes_rerun_exactly_their_readers(run):
    budget = run["plan_budget"]
    # 2 coins x 2 windows; stages 3-4 and production do both sides of a (coin, window) in one job
    assert budget["tune_stage2"] == 2 and budget["tune_stage3"] == 4 and budget["tune_stage4"] == 4
    assert budget["fit_production"] == 4 and budget["evaluate_production"] == 4
    assert not {"train_stage1", "evaluate_stage1", "pick_best_variant", "select_features"} & set(budget)
    xgb = run["plan_xgboost"]
    assert xgb["fit_production"] == 4 and xgb["evaluate_production"] == 4
    assert not {"tune_stage2", "tune_stage3", "tune_stage4"} & set(xgb)
    pca = run["plan_pca"]
    assert pca["fit_shared_encoder"] == 1 and pca["tune_stage3"] == 4 and "train_stage1" not in pca


def test_xgboost_gives_the_same_file_set(run):
    lgb_folder, xgb_folder = run["lightgbm_copy"], run["res"] / "production/BTCUSDT/w5/high"
    registry.verify_folder(xgb_folder)
    files = {
        name: sorted(p.name for p in f.iterdir() if not p.name.startswith("."))
        for name, f in (("lightgbm", lgb_folder), ("xgboost", xgb_folder))
    }
    assert set(files["lightgbm"]) - {"model.txt"} == set(files["xgboost"]) - {"model.json"}
    assert "model.txt" in files["lightgbm"] and "model.json" in files["xgboost"]
    meta = registry.read_model_meta(xgb_folder)
    assert meta["model_type"] == "xgboost" and meta["vin"].startswith("XGB-")
    # the job that refit it does both sides of BTCUSDT w5
    assert registry.read_model_meta(xgb_folder.parent / "low")["model_type"] == "xgboost"
    assert json.loads((xgb_folder / "model.json").read_text())["learner"]  # XGBoost's own JSON format
    same = ("features.json", "costs.json", "split_indices.json")
    for name in same:
        assert (lgb_folder / name).read_bytes() == (xgb_folder / name).read_bytes()


def test_shared_encoder_sees_training_rows_only(run):
    res = run["res"]
    enc = artifacts.read_json(res / "encoder/pca.json")
    expected = 0
    for symbol in ("BTCUSDT", "ETHUSDT"):
        splits = [artifacts.read_json(res / f"splits/{symbol}/w{w}.json") for w in (5, 20)]
        lo = max(s["train"]["lo"] for s in splits)
        hi = min(s["train"]["hi"] for s in splits)
        assert hi <= min(s["validation"]["lo"] for s in splits)
        expected += hi - lo
    assert enc["n_train_rows"] == expected
    base = pd.read_parquet(res / "features/base/BTCUSDT.parquet")
    assert enc["columns"] == [c for c in base.columns if c != "timestamp"]
    assert len(enc["components"]) == 50
