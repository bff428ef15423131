"""Helpers shared by the torch model tests (a uniquely named module: tests/ has no packages)."""

from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts.config.schema import config_group
from workflow_scripts.models import torch_models as tm

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "data" / "raw"
SMALL_SPEC = {"families": ["tech", "vol"], "lookbacks": [5, 21], "lags": [], "dtype": "float32"}


def synthetic_frame(n=600, p=5, seed=0, gap_at=None):
    """timestamp + p float32 features with signal in f0 and some NaN; labels 0/1/2 per bar."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)
    X[::17, 2] = np.nan
    score = X[:, 0] + 0.5 * np.nan_to_num(X[:, 1]) + rng.normal(scale=0.6, size=n)
    y = np.where(score > 0.6, 1, np.where(score < -0.6, 2, 0)).astype(np.int64)
    ts = pd.date_range("2024-01-01", periods=n + (5 if gap_at else 0), freq="h", tz="UTC")
    if gap_at:
        ts = ts.delete(range(gap_at, gap_at + 5))
    frame = pd.DataFrame(X, columns=[f"tech__f{i}" for i in range(p)])
    frame.insert(0, "timestamp", ts.astype("datetime64[ns, UTC]"))
    return frame, y


def tiny_cfg(arch="mlp", **kw):
    base = {
        "arch": arch,
        "seq_len": 4,
        "hidden": (16,),
        "d_model": 8,
        "n_heads": 2,
        "n_layers": 1,
        "max_epochs": 4,
        "patience": 2,
        "batch_size": 64,
        "seed": 7,
        "lr": 3e-3,
        "device": "cpu",
    }
    base.update(kw)
    group = config_group("model", "torch_mlp" if base["arch"] == "mlp" else "torch_transformer")
    return tm.TorchModelConfig.from_config(group, **base)


def tiny_models_bytes(tmp) -> dict[str, bytes]:
    """model.pt bytes of the tiny synthetic MLP and transformer (CPU, 2 epochs); `tmp` holds the feature
    matrix."""
    frame, y = synthetic_frame(n=300, gap_at=150)
    matrix = tm.write_feature_matrix(frame, Path(tmp) / "X.npy")
    rows = {"train": np.arange(0, 200), "validation": np.arange(210, 260)}
    out = {}
    for arch in tm.ARCHS:
        trained = tm.train_torch_model(
            matrix, rows, {k: y[v] for k, v in rows.items()}, tiny_cfg(arch, max_epochs=2)
        )
        out[arch] = tm.module_bytes(trained.module)
    return out
