"""Autoencoder shared encoder: training rows only, TorchScript file, version = sha256, deterministic."""

import numpy as np
import pandas as pd
import pytest

from workflow_scripts import artifacts, shared_encoder
from workflow_scripts import autoencoder_encoder as ae


def _coins(n=300, p=6):
    out = {}
    for i, sym in enumerate(("AAAUSDT", "BBBUSDT")):
        rng = np.random.default_rng(i)
        base = rng.normal(size=(n, 2))
        X = np.column_stack([base @ rng.normal(size=(2, p)) + 0.05 * rng.normal(size=(n, p))]).astype(
            np.float32
        )
        X[::13, 1] = np.nan
        f = pd.DataFrame(X, columns=[f"tech__f{j}" for j in range(p)])
        f.insert(0, "timestamp", pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"))
        out[sym] = f
    return out


CFG = ae.AutoencoderConfig(n_components=2, hidden=(8,), max_epochs=8, patience=3, batch_size=64, lr=5e-3)
RANGES = {"AAAUSDT": (0, 180), "BBBUSDT": (0, 180)}


def test_fit_transform_save_load(tmp_path):
    feats = _coins()
    enc = ae.fit_autoencoder_encoder(shared_encoder.training_rows(feats, RANGES), CFG)
    assert enc.n_train_rows == 360 and enc.output_columns == ["shared__ae_000", "shared__ae_001"]
    assert enc.history["best_holdout_loss"] < enc.history["holdout_loss"][0]
    out = ae.transform(enc, feats["AAAUSDT"])
    assert out.shape == (300, 2) and out.dtypes.eq(np.float32).all() and np.isfinite(out.to_numpy()).all()
    version = ae.save_encoder(tmp_path / "autoencoder.pt", enc)
    assert version == artifacts.sha256_file(tmp_path / "autoencoder.pt")
    side = artifacts.read_json(tmp_path / "autoencoder.json")
    assert side["sha256"] == version and side["columns"] == enc.columns
    loaded = ae.load_encoder(tmp_path / "autoencoder.pt")
    assert loaded.columns == enc.columns and loaded.prefix == "shared__ae_"
    np.testing.assert_allclose(ae.transform(loaded, feats["AAAUSDT"]).to_numpy(), out.to_numpy(), atol=1e-6)
    wide = ae.append_encoded(feats["BBBUSDT"], loaded)
    assert list(wide.columns[-2:]) == enc.output_columns


def test_only_training_rows_reach_the_fit(tmp_path):
    feats = _coins()
    a = ae.save_encoder(
        tmp_path / "a.pt", ae.fit_autoencoder_encoder(shared_encoder.training_rows(feats, RANGES), CFG)
    )
    changed = {s: f.copy() for s, f in feats.items()}
    for f in changed.values():
        f.iloc[200:, 1:] = 1e6  # validation/test rows: never seen
    b = ae.save_encoder(
        tmp_path / "b.pt", ae.fit_autoencoder_encoder(shared_encoder.training_rows(changed, RANGES), CFG)
    )
    assert a == b  # same version: byte-identical file (deterministic CPU training)
    changed["AAAUSDT"].iloc[10, 1] = 5.0  # a training row
    c = ae.save_encoder(
        tmp_path / "c.pt", ae.fit_autoencoder_encoder(shared_encoder.training_rows(changed, RANGES), CFG)
    )
    assert c != a


def test_nan_is_the_training_mean_and_columns_are_checked():
    feats = _coins()
    enc = ae.fit_autoencoder_encoder(shared_encoder.training_rows(feats, RANGES), CFG)
    row = feats["AAAUSDT"].iloc[[5]].copy()
    filled = row.copy()
    row.iloc[0, 3] = np.nan
    filled.iloc[0, 3] = float(enc.module.mean[2])
    np.testing.assert_allclose(
        ae.transform(enc, row).to_numpy(), ae.transform(enc, filled).to_numpy(), atol=1e-6
    )
    with pytest.raises(ValueError, match="encoder columns missing"):
        ae.transform(enc, feats["AAAUSDT"].drop(columns="tech__f0"))


def test_config_file():
    import yaml
    from _torch_helpers import ROOT

    cfg = yaml.safe_load((ROOT / "config" / "encoder" / "autoencoder.yaml").read_text())
    parsed = ae.AutoencoderConfig.from_config(cfg)
    assert parsed.n_components == cfg["n_components"] and parsed.prefix == "shared__ae_"
