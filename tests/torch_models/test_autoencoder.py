"""Autoencoder shared encoder: training rows only, one JSON file (weights as data), version = sha256,
deterministic."""

import numpy as np
import pandas as pd
import pytest

from workflow_scripts import artifacts
from workflow_scripts.models import autoencoder_encoder as ae
from workflow_scripts.models import shared_encoder


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


CFG = ae.AutoencoderConfig(
    n_components=2,
    hidden=(8,),
    prefix="shared__ae_",
    lr=5e-3,
    weight_decay=0.0,
    batch_size=64,
    max_epochs=8,
    patience=3,
    holdout_every=10,
    seed=42,
    num_threads=1,
)
RANGES = {"AAAUSDT": (0, 180), "BBBUSDT": (0, 180)}


def test_fit_transform_save_load(tmp_path):
    feats = _coins()
    enc = ae.fit_autoencoder_encoder(shared_encoder.training_rows(feats, RANGES), CFG)
    assert enc.n_train_rows == 360 and enc.output_columns == ["shared__ae_000", "shared__ae_001"]
    assert enc.history["best_holdout_loss"] < enc.history["holdout_loss"][0]
    out = ae.transform(enc, feats["AAAUSDT"])
    assert out.shape == (300, 2) and out.dtypes.eq(np.float32).all() and np.isfinite(out.to_numpy()).all()
    path = tmp_path / "autoencoder.json"
    version = ae.save_encoder(path, enc)
    assert version == artifacts.sha256_file(path)
    doc = artifacts.read_json(path)  # plain JSON data: no pickle, no TorchScript archive
    assert doc["format"] == ae.FORMAT and doc["columns"] == enc.columns and doc["hidden"] == [8]
    assert np.asarray(doc["layers"]["net.0.weight"]).shape == (8, 6)
    loaded = ae.load_encoder(path, expected_sha256=version)
    assert loaded.columns == enc.columns and loaded.prefix == "shared__ae_" and loaded.n_train_rows == 360
    np.testing.assert_array_equal(ae.transform(loaded, feats["AAAUSDT"]).to_numpy(), out.to_numpy())
    assert shared_encoder.load_shared_encoder(path).columns == enc.columns  # the dispatch by `format`
    ae.save_encoder(tmp_path / "again.json", loaded)
    assert (
        tmp_path / "again.json"
    ).read_bytes() == path.read_bytes()  # load -> save round-trips byte-exactly
    wide = ae.append_encoded(feats["BBBUSDT"], loaded)
    assert list(wide.columns[-2:]) == enc.output_columns


def test_only_training_rows_reach_the_fit(tmp_path):
    feats = _coins()
    a = ae.save_encoder(
        tmp_path / "a.json", ae.fit_autoencoder_encoder(shared_encoder.training_rows(feats, RANGES), CFG)
    )
    changed = {s: f.copy() for s, f in feats.items()}
    for f in changed.values():
        f.iloc[200:, 1:] = 1e6  # validation/test rows: never seen
    b = ae.save_encoder(
        tmp_path / "b.json", ae.fit_autoencoder_encoder(shared_encoder.training_rows(changed, RANGES), CFG)
    )
    assert a == b  # same version: byte-identical file (deterministic CPU training)
    changed["AAAUSDT"].iloc[10, 1] = 5.0  # a training row
    c = ae.save_encoder(
        tmp_path / "c.json", ae.fit_autoencoder_encoder(shared_encoder.training_rows(changed, RANGES), CFG)
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


def test_load_refuses_a_changed_or_wrong_file(tmp_path):
    feats = _coins()
    enc = ae.fit_autoencoder_encoder(shared_encoder.training_rows(feats, RANGES), CFG)
    path = tmp_path / "autoencoder.json"
    version = ae.save_encoder(path, enc)
    doc = artifacts.read_json(path)
    doc["layers"]["net.0.weight"] = doc["layers"]["net.0.weight"][:-1]  # one hidden unit short
    artifacts.write_json(tmp_path / "bad.json", doc)
    with pytest.raises(ValueError, match="bad.json: the stored weights do not fit"):
        ae.load_encoder(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="sha256 mismatch"):
        ae.load_encoder(tmp_path / "bad.json", expected_sha256=version)
    artifacts.write_json(tmp_path / "other.json", {"format": "something/1"})
    with pytest.raises(ValueError, match="unknown shared encoder format 'something/1'"):
        shared_encoder.load_shared_encoder(tmp_path / "other.json")


def test_entry_on_real_bars_ignores_validation_and_test_rows(tmp_path):
    """The rule's entry (encoder.kind=autoencoder) on real BTCUSDT/ETHUSDT features and two windows' splits:
    scrambling every row outside the training segments leaves results/encoder/autoencoder.json byte-identical;
    changing one training row changes it."""
    import yaml
    from _torch_helpers import RAW, ROOT, SMALL_SPEC

    from workflow_scripts.data import ingest, splits
    from workflow_scripts.features import build_features
    from workflow_scripts.job import Job
    from workflow_scripts.training.jobs import fit_shared_encoder

    spec = {
        k: v
        for k, v in yaml.safe_load((ROOT / "config/encoder/autoencoder.yaml").read_text()).items()
        if k != "name"
    }
    spec["n_components"] = 4
    spec["params"] |= {"max_epochs": 3, "hidden": [16]}
    symbols, windows = ["BTCUSDT", "ETHUSDT"], [5, 10]
    feats, split_paths = {}, []
    for s in symbols:
        path = ingest.find_raw_file(RAW, s)
        bars = ingest.normalise_bars(ingest.read_raw(path), str(path)).iloc[-900:].reset_index(drop=True)
        feats[s] = build_features(bars, SMALL_SPEC)
        for w in windows:
            split_paths.append(tmp_path / "splits" / s / f"w{w}.json")  # the workflow's layout
            artifacts.write_json(
                split_paths[-1], splits.chronological_split(bars["timestamp"], 2 * w, 0.6, 0.2, 24)
            )

    def run(name, tables):
        paths = []
        for s in symbols:
            paths.append(tmp_path / name / f"{s}.parquet")
            artifacts.write_parquet(paths[-1], tables[s])
        out = tmp_path / f"{name}.json"
        fit_shared_encoder(
            Job.from_manifest(
                {
                    "entry": "training.fit_shared_encoder",
                    "threads": 1,
                    "wildcards": {},
                    "output": {"encoder": str(out)},
                    "input": {"features": [str(x) for x in paths], "splits": [str(x) for x in split_paths]},
                    "params": {"spec": spec, "symbols": symbols, "windows_of": {s: windows for s in symbols}},
                }
            )
        )
        return out

    a = run("a", feats)
    doc = artifacts.read_json(a)
    assert doc["format"] == ae.FORMAT and doc["n_components"] == 4
    lo_hi = {
        s: shared_encoder.training_range([artifacts.read_json(p) for p in split_paths[2 * i : 2 * i + 2]])
        for i, s in enumerate(symbols)
    }
    assert doc["n_train_rows"] == sum(hi - lo for lo, hi in lo_hi.values())
    scrambled = {s: f.copy() for s, f in feats.items()}
    rng = np.random.default_rng(3)
    for s, (_lo, hi) in lo_hi.items():
        cols = scrambled[s].columns[1:]
        scrambled[s].loc[hi:, cols] = (
            rng.normal(size=(len(scrambled[s]) - hi, len(cols))).astype(np.float32) * 1e3
        )
    assert run("b", scrambled).read_bytes() == a.read_bytes()
    scrambled["ETHUSDT"].iloc[lo_hi["ETHUSDT"][0] + 100, 5] += 10.0  # past the NaN warm-up
    assert run("c", scrambled).read_bytes() != a.read_bytes()
