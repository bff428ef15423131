"""Fresh process: model.pt + feature_spec.json + raw bars -> probabilities for every bar (OUT.npy) and the
bars' timestamps in ns (OUT.npy.ts.npy).

    python _predict_child.py MODEL_DIR RAW_DIR OUT.npy
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from workflow_scripts.models import torch_models as tm

torch.set_num_threads(1)
model_dir, raw_dir, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
spec = json.loads((model_dir / "feature_spec.json").read_text())
table = tm.regenerate_features(spec, raw_dir)
module = tm.load_scripted((model_dir / "model.pt").read_bytes())  # torch.jit.load, nothing else
proba = tm.predict_proba(module, table)
np.save(out, proba)
np.save(out + ".ts.npy", table["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64))
