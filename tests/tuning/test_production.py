"""Production training and the tuning stages as the workflow runs them, on real BTCUSDT hourly bars."""

import numpy as np
import pytest
import yaml

from tests.conftest import ROOT
from workflow_scripts import artifacts
from workflow_scripts.data.splits import chronological_split
from workflow_scripts.features import build_features
from workflow_scripts.models import folder as contract
from workflow_scripts.models.kinds import KINDS
from workflow_scripts.models.shared_encoder import (
    fit_pca_encoder,
    save_encoder,
    training_range,
    training_rows,
)
from workflow_scripts.targets.grammar import horizon_bars, target_grid
from workflow_scripts.targets.swing_targets import build_targets
from workflow_scripts.training import production
from workflow_scripts.training.combination import build_combination, chosen_target
from workflow_scripts.training.tuning_stages import run_tuning_stage, stage2_representative, stage_data

WINDOW = 5
TARGETS_CFG = {
    "types": ["high_breakout", "high_reversion"],
    "std_thresholds": [1.0],
    "barrier_thresholds": [1.0],
    "horizon_multiplier": 1,
    "sigma_min_bars": 24,
    "windows": [WINDOW],
}
TARGET = "high_breakout_k1.0_th1.0"


def load(group):
    return yaml.safe_load((ROOT / f"config/{group}.yaml").read_text())


@pytest.fixture(scope="module")
def real(btc_bars):
    bars = btc_bars.iloc[-5000:].reset_index(drop=True)
    features = build_features(
        bars, {"families": ["candle", "tech", "vol"], "lookbacks": [5, 21], "lags": [], "dtype": "float32"}
    )
    horizon = horizon_bars(WINDOW, TARGETS_CFG)
    targets = build_targets(bars, WINDOW, target_grid(TARGETS_CFG), horizon, 24)
    split = chronological_split(bars["timestamp"], horizon, 0.6, 0.2, 24)
    names = [c for c in features.columns if c != "timestamp"][:40]
    choice = {
        "symbol": "BTCUSDT",
        "window": WINDOW,
        "side": "high",
        "trained": 2,
        "best": {"target": TARGET, "validation_average_precision": 0.5, "train_rows": 900},
        "variants_ranked": [
            {"target": TARGET, "status": "trained", "sharpe_per_trade": 0.1},
            {"target": "high_reversion_k1.0_th1.0", "status": "trained", "sharpe_per_trade": -0.2},
        ],
    }
    return {
        "bars": bars,
        "features": features,
        "targets": targets,
        "split": split,
        "names": names,
        "choice": choice,
    }


def combination(real, encoder=None, version=None):
    return build_combination(
        real["choice"], real["features"], real["names"], real["targets"], real["split"], encoder, version
    )


def tuning_cfg(trials=(1, 4, 3)):
    cfg = load("tuning/default")
    cfg["budget"] = {"trials": dict(zip(("stage2", "stage3", "stage4"), trials)), "minutes": None}
    cfg["max_rounds"] = 200
    cfg["cv"]["min_train_rows"] = 100
    return cfg


def test_rows_and_stage_data_never_touch_the_test_segment(real):
    comb = combination(real)
    test_lo = real["split"]["test"]["lo"]
    assert comb.rows["train"].max() + WINDOW < real["split"]["validation"]["lo"]
    assert comb.rows["test"].min() >= test_lo
    for stage in ("stage2", "stage3"):
        X, y, folds, pos = stage_data(comb, stage, tuning_cfg())
        assert pos.max() < test_lo and len(X) == len(y) == len(pos)
        assert (len(folds) == 1) if stage == "stage2" else (len(folds) == 5)
        for tr, va in folds:  # purged: no training label reaches into its validation fold
            assert comb.label_end[pos[tr]].max() < pos[va].min()
    no_best = dict(real["choice"], best=None)
    with pytest.raises(ValueError, match="no trained stage-1 variant for BTCUSDT w5 high"):
        chosen_target(no_best)


def test_stages_2_to_4_respect_budgets_and_resume(real, tmp_path):
    comb = combination(real)
    cfg = tuning_cfg(trials=(1, 4, 3))  # trials per study of stages 2, 3, 4
    chosen = stage2_representative([real["choice"]], cfg["representative_rule"])
    assert chosen is real["choice"]
    results = {}
    previous = None
    for stage in ("stage2", "stage3", "stage4"):
        r = run_tuning_stage(
            stage,
            comb,
            cfg,
            journal_path=tmp_path / f"{stage}.journal",
            previous=previous,
            key="BTCUSDT-w5-high",
        )
        assert r["finished_trials"] <= r["budget"]["n_trials"] and r["best_value"] > 0.3
        results[stage] = previous = r
    assert [results[s]["budget"]["n_trials"] for s in ("stage2", "stage3", "stage4")] == [1, 4, 3]
    assert results["stage3"]["trials"][0]["params"] == results["stage2"]["best_params"]
    lr = results["stage4"]["space"]["learning_rate"]
    best3 = results["stage3"]["best_params"]["learning_rate"]
    assert lr["low"] == pytest.approx(best3 * 0.75) and lr["high"] == pytest.approx(best3 * 1.25)
    again = run_tuning_stage(
        "stage4",
        comb,
        cfg,
        journal_path=tmp_path / "stage4.journal",
        previous=results["stage3"],
        key="BTCUSDT-w5-high",
    )
    assert again["study_name"] == results["stage4"]["study_name"]
    assert again["finished_trials"] == results["stage4"]["finished_trials"]  # spent: nothing more to run
    assert again["best_params"] == results["stage4"]["best_params"]


def tuned():
    return {
        "num_leaves": 30,
        "max_depth": 5,
        "feature_fraction": 0.7,
        "min_child_samples_frac": 0.01,
        "learning_rate": 0.1,
        "lambda_l1": 0.0,
    }


def write(tmp_path, real, comb, kind, encoder_path=None, through_fit_folder=False):
    """production.produce, or with `through_fit_folder` what the two rules do: fit_production's fit folder
    (write_fit), read back by evaluate_production (read_fit, assemble)."""
    model_cfg = load(f"model/{kind}")
    spec = {
        "model": model_cfg,
        "targets": TARGETS_CFG,
        "evaluation": load("evaluation/default"),
        "gates": load("gates/strict"),
        "grades": load("grades/default"),
        "features": {"lookbacks": [5, 21]},
        "universe": ["BTCUSDT"],
        "encoder": load("encoder/pca" if encoder_path else "encoder/none"),
    }
    stage = {
        "symbol": "BTCUSDT",
        "window": WINDOW,
        "side": "high",
        "best_params": tuned(),
        "best_value": 0.4,
        "study_name": "s",
        "finished_trials": 2,
    }
    tuning = {"stage2": dict(stage, finished_trials=1), "stage3": stage, "stage4": stage}
    trials = production.dsr_trials(real["choice"], tuning)
    costs = {
        "symbol": "BTCUSDT",
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
    folder = tmp_path / kind
    rest = (trials, real["bars"]["close"].to_numpy(), costs, spec)
    kw = {"data_version": "d" * 64, "data_end": "2026-01-01", "threads": 1, "encoder_path": encoder_path}
    if not through_fit_folder:
        trained, evaluation = production.produce(folder, comb, tuned(), tuning, *rest, **kw)
        return folder, trained, evaluation
    fitted = production.write_fit(tmp_path / f"{kind}-fit", *production.fit(comb, tuned(), model_cfg))
    trained, refit = production.read_fit(fitted)
    return folder, trained, production.assemble(folder, comb, trained, refit, tuning, *rest, **kw)


def test_lightgbm_and_xgboost_write_the_same_verified_folder(real, tmp_path):
    comb = combination(real)
    out = {kind: write(tmp_path, real, comb, kind) for kind in ("lightgbm", "xgboost")}
    names = {k: sorted(p.name for p in f.iterdir()) for k, (f, _, _) in out.items()}
    assert [n for n in names["lightgbm"] if n != "model.txt"] == [
        n for n in names["xgboost"] if n != "model.json"
    ]
    for kind, (folder, trained, evaluation) in out.items():
        contract.verify_folder(folder)
        meta = contract.read_model_meta(folder)
        assert meta["model_type"] == kind and meta["vin"].startswith(KINDS[kind].vin_type + "-")
        metrics = artifacts.read_json(folder / "metrics.json")
        assert metrics["dsr_trials"]["n_trials"] == 2 + 1 + 2 + 2 == evaluation["sharpe_tests"]["n_trials"]
        assert evaluation["segment"]["lo"] == real["split"]["test"]["lo"]
        assert 0.3 < trained.validation_ap <= 1 and 0 < trained.test_ap <= 1
        assert 1 <= trained.model.best_iteration <= 1000
    # Same inputs -> byte-identical model and documents (training_log.json holds timings).
    again, _, _ = write(tmp_path / "again", real, comb, "lightgbm")
    for name in ("model.txt", "metrics.json", "config.json", "features.json"):
        assert (again / name).read_bytes() == (out["lightgbm"][0] / name).read_bytes()
    with pytest.raises(ValueError, match="unknown model kind 'svm'"):
        production.fit_head(
            "svm",
            *comb.segment("train"),
            *comb.segment("validation"),
            params={},
            seed=1,
            threads=1,
            model_cfg={},
        )


@pytest.mark.parametrize("kind", ["lightgbm", "torch_mlp"])
def test_the_fit_and_evaluation_rules_write_the_folder_produce_writes(real, tmp_path, kind):
    """fit_production + evaluate_production (through the fit folder) == produce, file for file: the saved
    model is copied (a torch head's metadata files too), not refitted, and the evaluation reads the fit's
    saved predictions."""
    comb = combination(real)
    one, _, _ = write(tmp_path / "one", real, comb, kind)
    two, trained, _ = write(tmp_path / "two", real, comb, kind, through_fit_folder=True)
    files = sorted(p.relative_to(one).as_posix() for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two).as_posix() for p in two.rglob("*") if p.is_file())
    model_file = KINDS[kind].model_file
    assert f"refit/{model_file}" in files
    assert [f for f in files if (one / f).read_bytes() != (two / f).read_bytes()] == []
    with pytest.raises(TypeError, match="a saved fit does not predict"):
        trained.model.predict_proba(comb.X)
    (tmp_path / "two" / f"{kind}-fit" / "refit" / model_file).unlink()
    with pytest.raises(
        FileNotFoundError, match=rf"refit/{model_file}: the model file fit.json names is missing"
    ):
        production.read_fit(tmp_path / "two" / f"{kind}-fit")


def test_encoder_outputs_are_appended_and_recorded(real, tmp_path):
    rng = training_range([real["split"]])
    enc = fit_pca_encoder(training_rows({"BTCUSDT": real["features"]}, {"BTCUSDT": rng}), n_components=5)
    path = tmp_path / "pca.json"
    version = save_encoder(path, enc)
    comb = combination(real, enc, version)
    assert list(comb.X.columns) == real["names"] + [f"shared__pca_{i:03d}" for i in range(5)]
    folder, _, _ = write(tmp_path, real, comb, "lightgbm", encoder_path=path)
    contract.verify_folder(folder)
    assert contract.read_model_meta(folder)["dependencies"]["encoder_version"] == version
    feats = artifacts.read_json(folder / "features.json")
    assert feats["encoder"]["version"] == artifacts.sha256_file(folder / "encoder.json") == version
    assert feats["encoder"]["columns"] == [f"shared__pca_{i:03d}" for i in range(5)]
    assert np.isfinite(comb.X.to_numpy()[comb.rows["test"]][:, -5:]).all()


def test_vin_shows_three_significant_digits_of_continuous_tuned_values():
    from types import SimpleNamespace

    from workflow_scripts.evaluation.vin import decode_vin

    model = SimpleNamespace(kind="lightgbm", best_iteration=123, vin_type="LGBM")
    tuned = {
        "learning_rate": 0.06094611795264643,
        "lambda_l1": 0.009372718273,
        "num_leaves": 50,
        "max_depth": 6,
    }
    args = ("BTCUSDT", 10, "high_breakout_k1.5_th0.5", model)
    vin = production.production_vin(*args, tuned, "B", "2026-05-01 00:00:00+00:00", "a" * 64, "b" * 64, None)
    assert len(vin) < 80 and "0p0609" in vin and "0p00937" in vin, vin
    assert decode_vin(vin)["grade"] == "B"
    # The exact values still tell models apart: a change below the shown digits changes the suffix.
    other = production.production_vin(
        *args, {**tuned, "learning_rate": 0.060946}, "B", "2026-05-01", "a" * 64, "b" * 64, None
    )
    assert other != vin and other.rsplit("-", 1)[0] == vin.rsplit("-", 1)[0]
