"""Export and parity: model.pt + metadata.json + feature_spec.json; column checks; a fresh process reproduces
the test-segment predictions from model.pt, feature_spec.json and the raw bars alone."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from _torch_helpers import RAW, SMALL_SPEC, tiny_cfg

from workflow_scripts import artifacts
from workflow_scripts.models import torch_models as tm

HERE = Path(__file__).resolve().parent


def test_export_files_and_metadata(real_model):
    d = real_model["dir"]
    for name in (tm.MODEL_FILE, tm.METADATA_FILE, tm.FEATURE_SPEC_FILE, tm.REFERENCE_FILE):
        assert (d / name).is_file()
    on_disk = artifacts.read_json(d / tm.METADATA_FILE)
    assert on_disk == artifacts.read_json(d / tm.METADATA_FILE) and on_disk["format"] == tm.METADATA_FORMAT
    names = real_model["matrix"].feature_names
    assert on_disk["feature_names"] == names and on_disk["n_features"] == len(names)
    assert any(n.startswith("ETHUSDT__") for n in names)
    assert on_disk["seq_len"] == 6 and on_disk["input"]["shape"] == [-1, 6, len(names)]
    assert [c["name"] for c in on_disk["classes"]] == ["neither", "breakout", "reversion"]
    assert on_disk["model_sha256"] == artifacts.sha256_file(d / tm.MODEL_FILE)
    assert on_disk["parity"]["scripted_vs_eager_max_abs_diff"] <= tm.PARITY_ATOL
    assert on_disk["training"]["n_rows"]["train"] > 0 and "best_epoch" in on_disk["training"]["history"]
    spec = artifacts.read_json(d / tm.FEATURE_SPEC_FILE)
    assert spec["features"] == SMALL_SPEC and spec["cross_coin_symbols"] == ["ETHUSDT"]
    assert spec["feature_columns"] == names and len(spec["code_version"]["features_sha256"]) == 64
    # model.pt is a TorchScript archive, not a pickle of Python objects
    assert (d / tm.MODEL_FILE).read_bytes()[:2] == b"PK"


def test_loaded_model_reproduces_training_predictions(real_model):
    loaded = tm.load_model(real_model["dir"])
    ref = tm.read_reference(real_model["dir"])
    table = real_model["table"][["timestamp", *loaded.feature_names]]
    np.testing.assert_allclose(loaded.predict_proba(table, ref["positions"]), ref["proba"], atol=1e-6, rtol=0)


def test_fresh_process_reproduces_test_predictions_from_raw_bars(real_model, tmp_path):
    """Only model.pt, feature_spec.json and data/raw/*.parquet are read by the child (metadata.json is not
    even copied next to them)."""
    only = tmp_path / "shipped"
    only.mkdir()
    for name in (tm.MODEL_FILE, tm.FEATURE_SPEC_FILE):
        (only / name).write_bytes((real_model["dir"] / name).read_bytes())
    out = tmp_path / "proba.npy"
    subprocess.run(
        [sys.executable, str(HERE / "_predict_child.py"), str(only), str(RAW), str(out)],
        check=True,
        timeout=300,
    )
    proba, ts = np.load(out), np.load(str(out) + ".ts.npy")
    ref = tm.read_reference(real_model["dir"])
    at = pd.Index(ts).get_indexer(ref["timestamp_ns"])
    assert (at >= 0).all() and np.array_equal(at, ref["positions"])
    np.testing.assert_allclose(proba[at], ref["proba"], atol=1e-6, rtol=0)
    assert len(ref["positions"]) > 50


def test_wrong_order_or_number_of_features_is_refused(real_model):
    loaded = tm.load_model(real_model["dir"])
    names = loaded.feature_names
    table = real_model["table"][["timestamp", *names]]
    swapped = table[["timestamp", names[1], names[0], *names[2:]]]
    with pytest.raises(ValueError, match=r"wrong order: position 0 is .* expects"):
        loaded.predict_proba(swapped)
    with pytest.raises(ValueError, match="model feature column\\(s\\) missing"):
        loaded.predict_proba(table.drop(columns=names[-1]))
    with pytest.raises(ValueError, match="the model reads exactly"):
        loaded.predict_proba(table.assign(extra__x=1.0))
    with pytest.raises(Exception, match="wrong number of features"):
        loaded.module(torch.zeros(1, 6, len(names) - 1))


def test_load_refuses_a_changed_model_file(real_model, tmp_path):
    for name in (tm.MODEL_FILE, tm.METADATA_FILE, tm.FEATURE_SPEC_FILE):
        (tmp_path / name).write_bytes((real_model["dir"] / name).read_bytes())
    other = tm.TrainedModel(
        tm.SwingNet(
            tm.build_core(tiny_cfg(seq_len=6), 3), np.zeros(3), np.ones(3), ["a", "b", "c"], 6, "mlp"
        ),
        tiny_cfg(),
        {},
        {},
        {},
    )
    (tmp_path / tm.MODEL_FILE).write_bytes(tm.module_bytes(other.module))
    with pytest.raises(ValueError, match="does not match the sha256"):
        tm.load_model(tmp_path)


def test_export_is_byte_identical_for_identical_inputs(real_model, tmp_path):
    r = real_model
    again = tm.train_torch_model(
        r["matrix"],
        {k: r["rows"][k] for k in ("train", "validation")},
        {k: r["labels"][k] for k in ("train", "validation")},
        r["trained"].config,
    )
    tm.export_model(tmp_path, again, r["spec"], reference=dict(tm.read_reference(r["dir"])))
    for name in (tm.MODEL_FILE, tm.METADATA_FILE, tm.FEATURE_SPEC_FILE, tm.REFERENCE_FILE):
        assert (tmp_path / name).read_bytes() == (r["dir"] / name).read_bytes(), name
