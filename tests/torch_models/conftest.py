"""Fixtures for the neural heads: one thread, tiny models, a few hundred rows (the suite shares 2 CPU
cores)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _torch_helpers import RAW, SMALL_SPEC, synthetic_frame, tiny_cfg

from workflow_scripts.models import torch_models as tm


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def synth(tmp_path):
    frame, y = synthetic_frame(gap_at=250)
    matrix = tm.write_feature_matrix(frame, tmp_path / "X.npy")
    rows = {"train": np.arange(0, 380), "validation": np.arange(400, 500), "test": np.arange(520, 600)}
    labels = {k: y[v] for k, v in rows.items()}
    return frame, matrix, rows, labels


@pytest.fixture(scope="session")
def real_model(tmp_path_factory):
    """An MLP trained on the last 1,500 real BTCUSDT bars with ETHUSDT cross-coin features, exported with its
    test-segment predictions - the training side of the fresh-process parity test."""
    from workflow_scripts.data import ingest, splits
    from workflow_scripts.features import add_cross_coin, build_features
    from workflow_scripts.targets import grammar, swing_targets
    from workflow_scripts.training import stage1

    def bars(sym):
        path = ingest.find_raw_file(RAW, sym)
        return ingest.normalise_bars(ingest.read_raw(path), str(path))

    btc = bars("BTCUSDT")
    first, last = btc["timestamp"].iloc[-1500], btc["timestamp"].iloc[-1]
    clip = {
        s: b[(b["timestamp"] >= first) & (b["timestamp"] <= last)].reset_index(drop=True)
        for s, b in (("BTCUSDT", btc), ("ETHUSDT", bars("ETHUSDT")))
    }
    own = build_features(clip["BTCUSDT"], SMALL_SPEC)
    table = add_cross_coin(own, {"ETHUSDT": build_features(clip["ETHUSDT"], SMALL_SPEC)})
    window = horizon = 5
    grid = grammar.target_grid(
        {"types": ["high_breakout"], "std_thresholds": [1.0], "barrier_thresholds": [1.0]}
    )
    targets = swing_targets.build_targets(clip["BTCUSDT"], window, grid, horizon, 24)
    labels_all = targets[grid[0]["id"]].to_numpy()
    split = splits.chronological_split(table["timestamp"], horizon, 0.6, 0.2, 24)
    rows = stage1.variant_rows(labels_all, split, targets["label_end"].to_numpy())  # event rows per segment
    del rows["scored"]
    out = tmp_path_factory.mktemp("real")
    matrix = tm.write_feature_matrix(table, out / "X.npy")
    cfg = tiny_cfg(seq_len=6, hidden=(32,), max_epochs=3)
    labels = {k: labels_all[v] for k, v in rows.items()}
    trained = tm.train_torch_model(matrix, rows, labels, cfg)
    spec = tm.make_feature_spec(SMALL_SPEC, "BTCUSDT", ["ETHUSDT"], matrix.feature_names, first, last)
    proba = tm.softmax64(tm.predict_logits_matrix(trained.module, matrix, rows["test"]))
    ts_ns = table["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    ref = {"positions": rows["test"], "timestamp_ns": ts_ns[rows["test"]], "proba": proba}
    model_dir = out / "model"
    meta = tm.export_model(model_dir, trained, spec, reference=ref)
    return {
        "dir": model_dir,
        "meta": meta,
        "table": table,
        "rows": rows,
        "trained": trained,
        "spec": spec,
        "labels": labels,
        "matrix": matrix,
    }


def read_json(path):
    return json.loads(Path(path).read_text())
