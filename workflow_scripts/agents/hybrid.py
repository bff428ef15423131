"""Stage 3: the hybrid agent's observation and its chronology.

Features at bar t: the CNN-LSTM embedding of t (stage 1) and the class probabilities (neither, breakout,
reversion) at t of the symbol's production models of `agents.window`, one per side (high, low): 6 columns
`p_<side>_<class>`. The probabilities come from each folder's EVALUATED model (models/folder.py
`load_folder(model="evaluated")`: trained on the train segment's event rows, early-stopped on validation),
never from its deployment refit, which has seen the validation and test bars.

Chronology. On the train segment those probabilities are in-sample: the classifier was fitted there, so they
are sharper than anything it says about new bars, and an agent trained on them would learn to trust them
more than it should. The hybrid therefore never trains on the train segment. It trains on the first
`fit_share` of the VALIDATION segment and its trials are chosen on the rest of validation
(`hybrid_segments`); the test segment is touched once, by evaluate_hybrid. On validation the classifier's
probabilities are out of sample (its fit never read those bars; only its early-stopping round was chosen
there). The price: the hybrid learns from fewer bars than the base agents. Purged out-of-fold probabilities
on the train segment would keep train for the hybrid, at the cost of refitting every production head k
times; not done (docs/AGENTS.md).

`check_train_only` refuses a production folder whose training rows reach the hybrid's bars, and
`dependencies` records what the hybrid was built on (folder, VIN, model file and its sha256, the digest of
sha256.txt), so a changed production model is visible in the metadata; the rule takes the folders as inputs,
so Snakemake reruns the hybrid when they change."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from workflow_scripts import artifacts
from workflow_scripts.models.folder import SHA_FILE, input_columns, load_folder, model_file_of, verify_folder

CLASSES = ("neither", "breakout", "reversion")


def probability_columns(sides) -> list[str]:
    return [f"p_{side}_{c}" for side in sides for c in CLASSES]


def hybrid_segments(validation: tuple[int, int], fit_share: float) -> dict[str, tuple[int, int]]:
    """{fit, select}: the first `fit_share` of validation's bars and the rest (each >= 2 bars)."""
    lo, hi = int(validation[0]), int(validation[1])
    cut = lo + int(round(float(fit_share) * (hi - lo)))
    if cut - lo < 2 or hi - cut < 2:
        raise ValueError(
            f"hybrid: validation [{lo}, {hi}) with fit_share {fit_share} leaves fewer than 2 bars to fit "
            "or to choose on"
        )
    return {"fit": (lo, cut), "select": (cut, hi)}


def check_train_only(folder: str | Path, first_bar: int) -> int:
    """The last training row of a production folder's evaluated model (split_indices.json); raises when it
    is at or after `first_bar`, the first bar the hybrid learns from."""
    folder = Path(folder)
    rows = artifacts.read_json(folder / "split_indices.json").get("train")
    if not rows:
        raise ValueError(f"{folder / 'split_indices.json'}: no 'train' rows")
    last = int(max(rows))
    if last >= first_bar:
        raise ValueError(
            f"{folder}: its evaluated model trained on bar {last}, at or after bar {first_bar} where the "
            "hybrid starts learning: the probabilities would be in-sample"
        )
    return last


def production_probabilities(folders: Mapping[str, str | Path], features_path: str | Path) -> pd.DataFrame:
    """Class probabilities of every bar of the feature table (results/features/{symbol}.parquet: timestamp +
    feature columns, rows = bars) from each side's evaluated production model: timestamp, `p_<side>_<class>`.
    Only the columns the models read are loaded."""
    models = {side: load_folder(folder, model="evaluated") for side, folder in sorted(folders.items())}
    available = pq.read_schema(features_path).names
    columns = input_columns(list(models.values()), available)
    frame = pd.read_parquet(features_path, columns=["timestamp", *columns])
    out = {"timestamp": frame["timestamp"].to_numpy()}
    for side, model in models.items():
        proba = model.predict_proba(frame)
        for i, c in enumerate(CLASSES):
            out[f"p_{side}_{c}"] = proba[:, i].astype(np.float32)
    return pd.DataFrame(out)


def dependencies(folders: Mapping[str, str | Path]) -> dict:
    """{side: {folder, vin, model_file, model_sha256, sha256_txt}} of the production folders (verified)."""
    out = {}
    for side, folder in sorted(folders.items()):
        folder = Path(folder)
        hashes = verify_folder(folder)
        _, model_file = model_file_of(folder)
        out[side] = {
            "folder": str(folder),
            "vin": artifacts.read_json(folder / "metrics.json").get("vin"),
            "model_file": model_file,
            "model_sha256": hashes[model_file],
            "sha256_txt": hashlib.sha256((folder / SHA_FILE).read_bytes()).hexdigest(),
        }
    return out
