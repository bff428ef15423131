"""model=torch_mlp / torch_transformer through production.fit_head (the workflow's one model-kind dispatch) on
real BTCUSDT bars: windows around the event rows, deterministic CPU training, the production folder, and the
registry loading model.pt (hash-verified) and reproducing the training-time predictions through
predict_proba_rows."""

import numpy as np
import pandas as pd
import pytest
import yaml
from _torch_helpers import ROOT, SMALL_SPEC

from workflow_scripts.data.splits import chronological_split
from workflow_scripts.features import build_features
from workflow_scripts.models import torch_models as tm
from workflow_scripts.registry import store as registry
from workflow_scripts.targets.grammar import horizon_bars, target_grid
from workflow_scripts.targets.swing_targets import build_targets
from workflow_scripts.training import production
from workflow_scripts.training.combination import build_combination

WINDOW = 5
TARGETS_CFG = {
    "types": ["high_breakout"],
    "std_thresholds": [1.0],
    "barrier_thresholds": [1.0],
    "horizon_multiplier": 1,
    "sigma_min_bars": 24,
    "windows": [WINDOW],
}


@pytest.fixture(scope="module")
def comb(btc_bars):
    bars = btc_bars.iloc[-2500:].reset_index(drop=True)
    features = build_features(bars, SMALL_SPEC)
    horizon = horizon_bars(WINDOW, TARGETS_CFG)
    grid = target_grid(TARGETS_CFG)
    targets = build_targets(bars, WINDOW, grid, horizon, 24)
    split = chronological_split(bars["timestamp"], horizon, 0.6, 0.2, 24)
    names = [c for c in features.columns if c != "timestamp"][:24]
    choice = {"symbol": "BTCUSDT", "window": WINDOW, "side": "high", "best": {"target": grid[0]["id"]}}
    return build_combination(choice, features, names, targets, split)


def model_cfg(kind, **params):
    cfg = yaml.safe_load((ROOT / "config" / "model" / f"{kind}.yaml").read_text())
    cfg.update(max_epochs=3, seq_len=6)
    cfg["params"].update(params)
    return cfg


def documents(trained, comb):
    return {
        "config.json": {
            "symbol": "BTCUSDT",
            "window": WINDOW,
            "side": "high",
            "target": comb.target,
            "model_type": trained.model.model_type,
        },
        "metrics.json": {"vin": "TMLP-TEST"},
        "costs.json": {},
        "features.json": {"features": list(comb.X.columns)},
        "split_indices.json": {},
        "training_log.json": trained.model.log,
    }


def test_torch_mlp_trains_through_fit_head_and_the_registry_reproduces_it(comb, tmp_path):
    cfg = model_cfg("torch_mlp", hidden=[16])
    trained = production.train_combination(comb, {"learning_rate": 0.05}, cfg, threads=1)
    head = trained.model
    assert head.kind == "torch_mlp" and head.model_type == "torchscript" and head.vin_type == "TMLP"
    assert head.native_params["seq_len"] == 6 and head.native_params["hidden"] == [16]
    proba = trained.predictions[["p_neither", "p_breakout", "p_reversion"]].to_numpy()
    assert len(proba) == len(comb.rows["scored"]) and np.allclose(proba.sum(axis=1), 1.0)
    assert 0.0 < trained.validation_ap <= 1.0 and 0.0 < trained.test_ap <= 1.0
    # a window reads the bars before the row: the same row predicted alone or inside the whole table agrees
    rows = comb.rows["test"][:5]
    np.testing.assert_allclose(
        head.predict_proba(comb.X.iloc[rows]), proba[np.searchsorted(comb.rows["scored"], rows)]
    )

    folder = tmp_path / "prod"
    production.write_folder(folder, head, lambda sha256: documents(trained, comb))
    for name in (tm.MODEL_FILE, tm.METADATA_FILE, tm.FEATURE_SPEC_FILE, "sha256.txt"):
        assert (folder / name).is_file()
    loaded = registry.load_folder(folder)
    assert loaded.model_type == "torchscript"
    frame = pd.concat([comb.targets[["timestamp"]], comb.X], axis=1)
    again = loaded.predict_proba(frame)[comb.rows["scored"]]
    np.testing.assert_allclose(again, proba, atol=1e-6, rtol=0)
    # columns are picked by name (features.json); a missing one is refused, naming it
    with pytest.raises(registry.RegistryError, match="input lacks 1 feature column"):
        loaded.predict_proba(frame.drop(columns=comb.X.columns[3]))
    # the registry's hash check covers model.pt
    (folder / tm.MODEL_FILE).write_bytes((folder / tm.MODEL_FILE).read_bytes() + b"\0")
    with pytest.raises(registry.IntegrityError, match="model.pt: sha256 mismatch"):
        registry.load_folder(folder)


def test_production_torch_head_is_deterministic_and_needs_the_bar_table(comb, tmp_path):
    cfg = model_cfg("torch_transformer", d_model=8, n_heads=2, n_layers=1)
    a = production.train_combination(comb, {}, cfg, threads=1).model
    b = production.train_combination(comb, {}, cfg, threads=1).model
    assert a.save(tmp_path / "a").read_bytes() == b.save(tmp_path / "b").read_bytes()
    assert (tmp_path / "a" / tm.METADATA_FILE).read_bytes() == (
        tmp_path / "b" / tm.METADATA_FILE
    ).read_bytes()
    X_tr, y_tr = comb.segment("train")
    X_va, y_va = comb.segment("validation")
    with pytest.raises(ValueError, match="reads a window of bars"):
        production.fit_head(
            "torch_transformer", X_tr, y_tr, X_va, y_va, params={}, seed=1, threads=1, model_cfg=cfg
        )


def test_the_composed_model_group_parses():
    """What rule fit_production passes (the composed config, whose model group holds only the torch kinds'
    keys) is a valid torch config; a real unknown key is still refused."""
    from workflow_scripts.config.schema import compose

    for kind in ("torch_mlp", "torch_transformer"):
        model = compose([f"model={kind}"])["model"]
        assert "num_boost_round" not in model
        cfg = tm.TorchModelConfig.from_config(model)
        assert cfg.arch == tm.KIND_TO_ARCH[kind] and cfg.seq_len == model["seq_len"]
        with pytest.raises(ValueError, match=r"unknown torch model config key\(s\) \['bogus'\]"):
            tm.TorchModelConfig.from_config(model | {"bogus": 1})
