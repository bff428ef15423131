"""Benchmark: neural heads' training throughput and TorchScript inference latency, on CPU and on an NVIDIA GPU
whenever CUDA is available (both are measured and reported then).

    python benchmarks/torch_models.py [--epochs 2] [--threads 1] [--devices auto|cpu|cuda|cpu,cuda]
                                      [--out benchmarks/out/torch_models.json]

Data: data/raw/BTCUSDT_1h.parquet, features from workflow_scripts.features.build_features with a small spec
(tech + vol, lookbacks 5/21/55), labels from workflow_scripts.targets.swing_targets.build_targets (window 10,
high_breakout k1.0 theta1.0, horizon 10), chronological split 60/20/20 with a 24-bar embargo. Event rows only.

Reports per (device, arch): training samples per second (over all epochs, first included; the trainer's own
DataLoader over the memory-mapped .npy, AMP and torch.compile per the config defaults on that device), best
epoch, and TorchScript inference latency per bar at batch 1 (median of 300 calls) and batch 8192 (median of 7
calls, divided by 8192). Inference is float32, no autocast, windows pre-gathered (model time only).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workflow_scripts import artifacts
from workflow_scripts.config.schema import config_group
from workflow_scripts.data import splits
from workflow_scripts.features import build_features
from workflow_scripts.models import torch_models as tm
from workflow_scripts.targets import grammar, swing_targets
from workflow_scripts.training import stage1

SPEC = {"families": ["tech", "vol"], "lookbacks": [5, 21, 55], "lags": [], "dtype": "float32"}
WINDOW = HORIZON = 10
ARCHS = {"mlp": {"arch": "mlp", "seq_len": 8}, "transformer": {"arch": "transformer", "seq_len": 32}}


def load_data(tmp: Path):
    bars = pd.read_parquet(REPO / "data" / "raw" / "BTCUSDT_1h.parquet")
    table = build_features(bars, SPEC)
    grid = grammar.target_grid(
        {"types": ["high_breakout"], "std_thresholds": [1.0], "barrier_thresholds": [1.0]}
    )
    targets = swing_targets.build_targets(bars, WINDOW, grid, HORIZON, 24)
    y = targets[grid[0]["id"]].to_numpy()
    split = splits.chronological_split(table["timestamp"], HORIZON, 0.6, 0.2, 24)
    rows = stage1.variant_rows(y, split, targets["label_end"].to_numpy())  # event rows per segment
    del rows["scored"]
    matrix = tm.write_feature_matrix(table, tmp / "X.npy")
    return matrix, rows, {k: y[v] for k, v in rows.items()}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def latency(scripted, x: np.ndarray, device, batch: int, reps: int) -> float:
    """Median seconds per bar for `batch`-row calls."""
    xb = torch.from_numpy(np.resize(x, (batch, *x.shape[1:]))).to(device)
    times = []
    with torch.no_grad():
        for _ in range(3):
            scripted(xb)  # warm-up (TorchScript profiling executor specialises on the first calls)
        for _ in range(reps):
            _sync(device)
            t = time.perf_counter()
            scripted(xb)
            _sync(device)
            times.append(time.perf_counter() - t)
    return float(np.median(times)) / batch


def bench(device: torch.device, arch: str, matrix, rows, labels, epochs: int, threads: int) -> dict:
    cfg = tm.TorchModelConfig.from_config(
        config_group("model", f"torch_{arch}"),
        **ARCHS[arch],
        max_epochs=epochs,
        patience=epochs + 1,
        device=str(device),
        num_threads=threads,
    )
    t0 = time.perf_counter()
    trained = tm.train_torch_model(
        matrix,
        {k: rows[k] for k in ("train", "validation")},
        {k: labels[k] for k in ("train", "validation")},
        cfg,
    )
    wall = time.perf_counter() - t0
    h = trained.history
    scripted = tm.load_scripted(tm.module_bytes(trained.module)).to(device)
    x = tm.gather_windows(matrix.array(), matrix.seg_pos, rows["test"][:8192], cfg.seq_len)
    with torch.no_grad():
        torch.set_num_threads(threads)
        lat1 = latency(scripted, x[:1], device, 1, 300)
        lat8k = latency(scripted, x, device, 8192, 7)
    return {
        "device": str(device),
        "arch": arch,
        "seq_len": cfg.seq_len,
        "n_features": len(matrix.feature_names),
        "train_rows": len(rows["train"]),
        "epochs": h["epochs_run"],
        "batch_size": h["final_batch_size"],
        "amp": h["amp_dtype"],
        "compile_used": h["compile"]["used"],
        "train_samples_per_s": round(h["train_samples_per_second"], 1),
        "fit_wall_s": round(wall, 2),
        "best_val_loss": round(h["best_val_loss"], 4),
        "latency_batch1_ms_per_bar": round(lat1 * 1e3, 4),
        "latency_batch8192_us_per_bar": round(lat8k * 1e6, 3),
        "bars_per_s_batch8192": round(1.0 / lat8k, 0),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--devices", default="auto", help="auto = cpu, plus cuda when available")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "torch_models.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    devices = (
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        if args.devices == "auto"
        else args.devices.split(",")
    )
    with tempfile.TemporaryDirectory() as tmp:
        matrix, rows, labels = load_data(Path(tmp))
        results = [
            bench(torch.device(d), a, matrix, rows, labels, args.epochs, args.threads)
            for d in devices
            for a in ARCHS
        ]
    report = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_threads": args.threads,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "data": {
            "symbol": "BTCUSDT",
            "spec": SPEC,
            "window": WINDOW,
            "rows": {k: len(v) for k, v in rows.items()},
        },
        "results": results,
    }
    artifacts.write_json(args.out, report)
    cols = [
        "device",
        "arch",
        "train_samples_per_s",
        "latency_batch1_ms_per_bar",
        "latency_batch8192_us_per_bar",
        "amp",
        "compile_used",
        "batch_size",
    ]
    print(pd.DataFrame(results)[cols].to_string(index=False))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
