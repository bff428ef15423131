"""Fresh process: train the tiny synthetic MLP and transformer on CPU and write their model.pt bytes.

python _train_child.py OUT_DIR
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _torch_helpers import synthetic_frame, tiny_cfg

from workflow_scripts import torch_models as tm

torch.set_num_threads(1)
out = Path(sys.argv[1])
frame, y = synthetic_frame(n=300, gap_at=150)
with tempfile.TemporaryDirectory() as tmp:
    matrix = tm.write_feature_matrix(frame, Path(tmp) / "X.npy")
    rows = {"train": np.arange(0, 200), "validation": np.arange(210, 260)}
    for arch in tm.ARCHS:
        trained = tm.train_torch_model(
            matrix, rows, {k: y[v] for k, v in rows.items()}, tiny_cfg(arch, max_epochs=2)
        )
        (out / f"{arch}.pt").write_bytes(tm.module_bytes(trained.module))
