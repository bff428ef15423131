import numpy as np
import pytest

from workflow_scripts import artifacts
from workflow_scripts.models import heads

PARAMS = {
    "num_leaves": 8,
    "max_depth": 5,
    "learning_rate": 0.1,
    "feature_fraction": 0.7,
    "lambda_l1": 0.01,
    "bagging_freq": 5,
    "bagging_fraction": 0.8,
    "min_child_samples": 10,
}


def _fit(kind, data, seed=42):
    X, y, _, _ = data
    return heads.train_head(
        kind,
        X.iloc[:400],
        y[:400],
        X.iloc[400:],
        y[400:],
        PARAMS,
        seed,
        num_boost_round=60,
        early_stopping_rounds=10,
        encoder_sha256="ab" * 32,
    )


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost"])
def test_head_roundtrip_and_determinism(tmp_path, data, kind):
    X = data[0]
    a, b = _fit(kind, data), _fit(kind, data)
    heads.save_head(tmp_path / "a", a)
    heads.save_head(tmp_path / "b", b)
    for name in (heads.MODEL_FILES[kind], heads.HEAD_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    loaded = heads.load_head(tmp_path / "a")
    np.testing.assert_allclose(
        heads.predict_proba(loaded, X.iloc[400:]), heads.predict_proba(a, X.iloc[400:]), rtol=1e-6
    )
    proba = heads.predict_proba(loaded, X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert loaded.encoder_sha256 == "ab" * 32
    assert 0 < heads.macro_average_precision(data[1][400:], proba[400:]) <= 1


def test_both_kinds_write_the_same_file_set(tmp_path, data):
    metas = {}
    for kind in ("lightgbm", "xgboost"):
        metas[kind] = heads.save_head(tmp_path / kind, _fit(kind, data))
    files = {k: sorted(p.name for p in (tmp_path / k).iterdir()) for k in metas}
    assert files["lightgbm"] == ["head.json", "model.txt"]
    assert files["xgboost"] == ["head.json", "model.json"]
    assert [f.rsplit(".", 1)[0] for f in files["lightgbm"]] == [f.rsplit(".", 1)[0] for f in files["xgboost"]]
    assert set(metas["lightgbm"]) == set(metas["xgboost"])
    on_disk = {k: artifacts.read_json(tmp_path / k / "head.json") for k in metas}
    assert set(on_disk["lightgbm"]) == set(on_disk["xgboost"])


def test_tampered_model_is_refused(tmp_path, data):
    heads.save_head(tmp_path, _fit("lightgbm", data))
    with open(tmp_path / "model.txt", "a") as fh:
        fh.write("\n")
    with pytest.raises(ValueError):
        heads.load_head(tmp_path)


def test_xgboost_params_translate_lightgbm_names():
    p = heads.xgboost_params(
        {
            "learning_rate": 0.05,
            "num_leaves": 30,
            "lambda_l1": 0.1,
            "bagging_freq": 5,
            "objective": "multiclass",
            "min_child_samples": 50,
        },
        seed=1,
    )
    assert (
        p["eta"] == 0.05 and p["max_leaves"] == 30 and p["alpha"] == 0.1 and p["grow_policy"] == "lossguide"
    )
    assert p["objective"] == "multi:softprob" and "bagging_freq" not in p and "min_child_samples" not in p


def test_bad_labels_are_refused(data):
    X, y, _, _ = data
    with pytest.raises(ValueError):
        heads.train_head("lightgbm", X, np.full(len(X), -1), X, y, PARAMS, 1)
