"""Fresh process: train the tiny synthetic MLP and transformer on CPU and write their model.pt bytes.

python _train_child.py OUT_DIR
"""

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _torch_helpers import tiny_models_bytes

torch.set_num_threads(1)
out = Path(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    for arch, data in tiny_models_bytes(tmp).items():
        (out / f"{arch}.pt").write_bytes(data)
