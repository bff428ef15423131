"""The production-folder contract (docs/REGISTRY.md): what a model folder holds, its hashes, its identity,
and loading its model. Training writes folders with it (write_sha256), the registry copies and indexes them
(registry/store.py), predictions load them (load_folder). Model kinds come from models/kinds.py.

    <model file>       the ONE model file of its kind (kinds.MODEL_FILES: model.txt, model.json, model.pt,
                       ensemble.json)
    METADATA_FILES     config.json, metrics.json, costs.json, features.json, split_indices.json,
                       training_log.json
    encoder.json       optional copy of the shared encoder (features.json `encoder`)
    members/<name>/    an ensemble's member folders
    refit/             the deployment refit (REFIT_DIR): refit/<model file> (same kind and file name as the
                       evaluated model, trained on every usable bar, training/production.py) and
                       refit/refit.json (REFIT_FILE: rule, rounds, rows, training span)
    sha256.txt         written LAST, covers every other file (`sha256sum -c` compatible), refit/ included

A combination whose stage-1 variants were all skipped (too few rows of a class on its segments) has no model:
its fit and production folders hold only NO_MODEL_FILE (`write_no_model`: symbol, window, side, reason), and
every reader of production folders sets them aside with `split_no_model` (listed with the reason in the
summaries, never registered; docs/SCALE.md, "Sides without a model").

Two models, one folder: the top-level model file is the EVALUATED model (trained on train, early-stopped on
validation, its test record in metrics.json); refit/ holds the DEPLOYED one. `load_folder(model=...)` picks:
"evaluated" (the default: evaluation, scoring, benchmarks) or "deployed" (predictions, paper trading: the
refit when the folder has one, else the evaluated model; an ensemble's members follow the same choice).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.models import kinds
from workflow_scripts.models.shared_encoder import encode, load_shared_encoder

METADATA_FILES = (
    "config.json",
    "metrics.json",
    "costs.json",
    "features.json",
    "split_indices.json",
    "training_log.json",
)
SHA_FILE = "sha256.txt"
NO_MODEL_FILE = "no_model.json"  # written in place of a model folder's files: docs above
REFIT_DIR = "refit"  # the deployment refit's subfolder: <model file> + REFIT_FILE
REFIT_FILE = "refit.json"
MODEL_CHOICES = ("evaluated", "deployed")
# Files that differ between identical trainings (fit timings): not part of a model's identity.
VOLATILE_FILES = ("training_log.json",)
SIDES = ("high", "low")
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")
VIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")


class RegistryError(ValueError):
    """A registry or model-folder operation refused: the message is one readable line."""


class IntegrityError(RegistryError):
    """A model folder is tampered with or incomplete."""


def write_no_model(folder: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Mark `folder` as a combination without a model; `record`: symbol, window, side, reason."""
    missing = [k for k in ("symbol", "window", "side", "reason") if not record.get(k)]
    if missing:
        raise ValueError(f"a no-model record needs {missing}: got {dict(record)}")
    artifacts.write_json(Path(folder) / NO_MODEL_FILE, dict(record))


def no_model(folder: str | os.PathLike) -> dict | None:
    """The no-model record of a folder written by `write_no_model`, else None."""
    path = Path(folder) / NO_MODEL_FILE
    return artifacts.read_json(path) if path.exists() else None


def split_no_model(folders: Iterable[str | os.PathLike]) -> tuple[list[Path], list[dict]]:
    """(folders with a model, no-model records with their folder) in the given order."""
    models, none = [], []
    for f in map(Path, folders):
        record = no_model(f)
        if record is None:
            models.append(f)
        else:
            none.append(record | {"folder": str(f)})
    return models, none


def check_symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not SYMBOL_RE.match(symbol):
        raise RegistryError(f"bad symbol {symbol!r}: expected upper-case letters/digits like BTCUSDT")
    return symbol


def check_vin(vin: str) -> str:
    if not isinstance(vin, str) or not VIN_RE.match(vin) or ".." in vin:
        raise RegistryError(f"bad VIN {vin!r}: letters, digits, '-', '_', '.', '+' only")
    return vin


def normalise_model_type(model_type: str) -> str:
    key = str(model_type).strip().lower()
    if key not in kinds.MODEL_TYPE_ALIASES:
        raise RegistryError(f"unknown model type {model_type!r}; known: {sorted(kinds.MODEL_FILES)}")
    return kinds.MODEL_TYPE_ALIASES[key]


def feature_hash(names: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(names)).encode("utf-8")).hexdigest()


def finite(x: Any) -> float | None:
    """`x` as a float, None when it is missing, not a number or not finite."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# ---- hashes: sha256.txt ---------------------------------------------------------------------------------
def identity_hashes(hashes: Mapping[str, str]) -> dict[str, str]:
    """{file: sha256} without VOLATILE_FILES: equal for two folders holding the same model and metadata."""
    return {k: v for k, v in sorted(hashes.items()) if k not in VOLATILE_FILES}


def folder_files(folder: Path) -> list[str]:
    """Every regular file of a folder, relative POSIX paths, sorted (temporary files of a writer excluded, and
    the marker Snakemake touches in a directory() output after its job: not part of the model)."""
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.endswith(".tmp") and p.name != ".snakemake_timestamp":
            out.append(p.relative_to(folder).as_posix())
    return out


def write_sha256(folder: str | os.PathLike) -> Path:
    """Write `sha256.txt` over every other file in `folder` (`sha256sum -c` compatible: "<hex>  <name>")."""
    folder = Path(folder)
    lines = [
        f"{artifacts.sha256_file(folder / name)}  {name}" for name in folder_files(folder) if name != SHA_FILE
    ]
    artifacts.write_text(folder / SHA_FILE, "\n".join(lines) + "\n")
    return folder / SHA_FILE


def read_sha256(folder: str | os.PathLike) -> dict[str, str]:
    folder = Path(folder)
    path = folder / SHA_FILE
    if not path.is_file():
        raise IntegrityError(f"{folder}: incomplete model folder: {SHA_FILE} is missing")
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        m = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line.strip())
        if not m:
            raise IntegrityError(f"{path}: line {n} is not '<sha256>  <file>': {line!r}")
        out[m[2]] = m[1]
    return out


def model_file_of(folder: Path) -> tuple[str, str]:
    """(model_type, file name) of the one model file in a folder."""
    found = [(t, f) for t, f in kinds.MODEL_FILES.items() if (folder / f).is_file()]
    if not found:
        raise IntegrityError(
            f"{folder}: incomplete model folder: no model file (one of {sorted(kinds.MODEL_FILES.values())})"
        )
    if len(found) > 1:
        raise IntegrityError(f"{folder}: more than one model file: {[f for _, f in found]}")
    return found[0]


def verify_folder(folder: str | os.PathLike) -> dict[str, str]:
    """Check a model folder against its sha256.txt; return {file: sha256}. Raises IntegrityError naming the
    first missing, unlisted or changed file (with expected and actual hash)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IntegrityError(f"{folder}: model folder does not exist")
    record = no_model(folder)
    if record is not None:
        raise IntegrityError(f"{folder}: no model in this folder ({NO_MODEL_FILE}): {record.get('reason')}")
    expected = read_sha256(folder)
    _, model_name = model_file_of(folder)
    for name in (model_name, *METADATA_FILES):
        if not (folder / name).is_file():
            raise IntegrityError(f"{folder}: incomplete model folder: {name} is missing")
        if name not in expected:
            raise IntegrityError(f"{folder}: {name} is not listed in {SHA_FILE}")
    if (folder / REFIT_DIR).exists():  # the deployment refit: complete, or the folder is refused
        for name in (f"{REFIT_DIR}/{model_name}", f"{REFIT_DIR}/{REFIT_FILE}"):
            if not (folder / name).is_file():
                raise IntegrityError(f"{folder}: incomplete model folder: {name} is missing")
            if name not in expected:
                raise IntegrityError(f"{folder}: {name} is not listed in {SHA_FILE}")
    present = set(folder_files(folder)) - {SHA_FILE}
    for name in sorted(expected):
        if name not in present:
            raise IntegrityError(
                f"{folder}: incomplete model folder: {name} is listed in {SHA_FILE} but missing"
            )
    unlisted = sorted(present - set(expected))
    if unlisted:
        raise IntegrityError(f"{folder}: file(s) not covered by {SHA_FILE}: {unlisted}")
    for name in sorted(expected):
        actual = artifacts.sha256_file(folder / name)
        if actual != expected[name]:
            raise IntegrityError(
                f"{folder / name}: sha256 mismatch (expected {expected[name]}, "
                f"actual {actual}); the folder was changed after it was written: "
                "refusing to use it"
            )
    return expected


# ---- reading a production folder ------------------------------------------------------------------------
def read_model_meta(folder: str | os.PathLike) -> dict:
    """The identity of a production folder, from its files (the contract in docs/REGISTRY.md):

    config.json   symbol, window, side, target, model_type (required); params; dependencies {data_version,
                  encoder_version} (optional)
    metrics.json  vin (required); grade (string or {"grade": ...}); gate {"profile", "passed"}; score (float,
                  higher is better: the ranking used by archive/deploy/cleanup)
    features.json features (ordered list of column names the model reads)
    """
    folder = Path(folder)
    cfg = artifacts.read_json(folder / "config.json")
    metrics = artifacts.read_json(folder / "metrics.json")
    feats = artifacts.read_json(folder / "features.json")
    missing = [k for k in ("symbol", "window", "side", "target", "model_type") if k not in cfg]
    if missing:
        raise RegistryError(f"{folder / 'config.json'}: missing key(s) {missing}")
    vin = metrics.get("vin") or cfg.get("vin")
    if not vin:
        raise RegistryError(f"{folder / 'metrics.json'}: missing key 'vin'")
    if "features" not in feats or not isinstance(feats["features"], list):
        raise RegistryError(f"{folder / 'features.json'}: missing list 'features'")
    model_type, model_name = model_file_of(folder)
    declared = normalise_model_type(cfg["model_type"])
    if declared != model_type:
        raise RegistryError(
            f"{folder}: config.json says model_type {declared!r} but the model file is {model_name}"
        )
    side = str(cfg["side"])
    if side not in SIDES:
        raise RegistryError(f"{folder / 'config.json'}: side must be one of {list(SIDES)}, got {side!r}")
    grade = metrics.get("grade")
    if isinstance(grade, Mapping):
        grade = grade.get("grade")
    gate = metrics.get("gate") or {}
    deps = dict(cfg.get("dependencies") or {})
    if "encoder_version" not in deps and (folder / "encoder.npz").is_file():
        deps["encoder_version"] = artifacts.sha256_file(folder / "encoder.npz")
    return {
        "vin": check_vin(str(vin)),
        "symbol": check_symbol(str(cfg["symbol"])),
        "window": int(cfg["window"]),
        "side": side,
        "target": str(cfg["target"]),
        "model_type": model_type,
        "model_file": model_name,
        "grade": None if grade is None else str(grade),
        "gate_profile": gate.get("profile"),
        "gate_passed": bool(gate.get("passed", False)),
        "score": finite(metrics.get("score")),
        "feature_count": len(feats["features"]),
        "feature_hash": feature_hash(feats["features"]),
        "dependencies": {
            "data_version": deps.get("data_version"),
            "encoder_version": deps.get("encoder_version"),
        },
    }


# ---- loading --------------------------------------------------------------------------------------------
@dataclass
class LoadedModel:
    """A verified model: `predict_proba(frame)` -> (n, 3) float64 probabilities of (neither, breakout,
    reversion) on the columns listed in features.json, in that order."""

    vin: str
    folder: Path
    entry: dict
    features: list[str]
    feature_info: dict
    model_type: str
    model: Any = field(repr=False)
    predict_fn: Callable[[np.ndarray], np.ndarray] = field(repr=False, default=None)
    source: str = "evaluated"  # which model of the folder was loaded: "evaluated" or "refit"

    @property
    def encoder_columns(self) -> list[str]:
        """Feature columns the model's own shared-encoder copy derives (features.json `encoder`), so a frame
        of the symbol's features needs not carry them."""
        return list((self.feature_info.get("encoder") or {}).get("columns") or [])

    def with_encoder(self, frame):
        """`frame` plus the shared-encoder columns it lacks, computed with the folder's encoder file (verified
        against the version features.json records)."""
        enc = self.feature_info.get("encoder") or {}
        if not any(c not in frame.columns for c in self.encoder_columns):
            return frame
        encoder = load_shared_encoder(self.folder / enc["file"], expected_sha256=enc.get("version"))
        extra = [c for c in encoder.output_columns if c not in frame.columns]
        return pd.concat([frame, encode(encoder, frame)[extra]], axis=1)

    def matrix(self, frame) -> np.ndarray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise RegistryError(
                f"model {self.vin}: input lacks {len(missing)} feature column(s), e.g. {missing[:5]}"
            )
        return frame[self.features].to_numpy(np.float32)

    def predict_proba(self, frame) -> np.ndarray:
        frame = self.with_encoder(frame)
        X = self.matrix(frame)
        if len(X) == 0:
            return np.zeros((0, 3))
        if kinds.kind_of(self.model_type).needs_timestamps:  # windows of bars: gaps from the timestamps
            proba = self.predict_fn(X, frame["timestamp"] if "timestamp" in frame.columns else None)
        else:
            proba = self.predict_fn(X)
        proba = np.asarray(proba, dtype=np.float64).reshape(len(X), -1)
        if proba.shape[1] != 3:
            raise RegistryError(f"model {self.vin}: expected 3 class probabilities, got {proba.shape[1]}")
        return proba


def input_columns(models: Sequence[LoadedModel], available: Iterable[str]) -> list[str]:
    """The feature-table columns to read for `models` (sorted, no timestamp): the ones they list, or every
    available column when one derives shared-encoder columns (its encoder reads the coin's own features)."""
    available = set(available) - {"timestamp"}
    if any(m.encoder_columns for m in models):
        return sorted(available)
    return sorted(set().union(*(m.features for m in models)) & available)


def has_refit(folder: str | os.PathLike) -> bool:
    """Whether the folder holds a deployment refit (REFIT_DIR)."""
    return (Path(folder) / REFIT_DIR / REFIT_FILE).is_file()


def training_span(folder: str | os.PathLike, model: str = "deployed") -> dict | None:
    """The training span of a folder's model: {first_bar, last_bar, last_label_bar} (ISO timestamps; the
    last label bar is the last bar whose price the labels read). "deployed": refit/refit.json's span, an
    ensemble without a refit of its own spans its members' deployed models (earliest first, latest last);
    "evaluated" (or a folder without a refit): metrics.json `training_span`. None when not recorded (folders
    written before the refit existed)."""
    folder = Path(folder)
    if model not in MODEL_CHOICES:
        raise RegistryError(f"model must be one of {MODEL_CHOICES}, got {model!r}")
    if model == "deployed" and has_refit(folder):
        return dict(artifacts.read_json(folder / REFIT_DIR / REFIT_FILE)["span"])
    members = folder / "members"
    if model == "deployed" and members.is_dir():
        spans = [training_span(m, model) for m in sorted(members.iterdir()) if m.is_dir()]
        if spans and all(spans):
            return {
                "first_bar": min(s["first_bar"] for s in spans),
                "last_bar": max(s["last_bar"] for s in spans),
                "last_label_bar": max(s["last_label_bar"] for s in spans),
            }
    span = artifacts.read_json(folder / "metrics.json").get("training_span")
    return None if span is None else dict(span)


def load_folder(
    folder: str | os.PathLike, vin: str | None = None, entry: dict | None = None, *, model: str = "evaluated"
) -> LoadedModel:
    """Verify a model folder, then load one of its models from the very bytes that were hashed: `model`
    "evaluated" (the top-level model file) or "deployed" (refit/<model file> when present, else the
    evaluated one; an ensemble's members are loaded with the same choice)."""
    folder = Path(folder)
    if model not in MODEL_CHOICES:
        raise RegistryError(f"model must be one of {MODEL_CHOICES}, got {model!r}")
    expected = verify_folder(folder)
    model_type, model_name = model_file_of(folder)
    refit = model == "deployed" and has_refit(folder)
    name = f"{REFIT_DIR}/{model_name}" if refit else model_name
    data = (folder / name).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected[name]:  # changed between the check and the read
        raise IntegrityError(f"{folder / name}: sha256 mismatch (expected {expected[name]}, actual {actual})")
    feats = artifacts.read_json(folder / "features.json")
    loaded, predict_fn = model_predictor(model_type, data, list(feats["features"]), folder, model=model)
    meta_vin = vin or (entry or {}).get("vin") or artifacts.read_json(folder / "metrics.json").get("vin")
    return LoadedModel(
        vin=str(meta_vin),
        folder=folder,
        entry=dict(entry or {}),
        features=list(feats["features"]),
        feature_info=feats,
        model_type=model_type,
        model=loaded,
        predict_fn=predict_fn,
        source="refit" if refit else "evaluated",
    )


def model_predictor(
    model_type: str, data: bytes, features: list[str], folder: Path, model: str = "evaluated"
) -> tuple[Any, Callable[..., np.ndarray]]:
    """(model object, predict(X float32 (n, features)) -> (n, 3) probabilities) from the verified bytes of the
    model file: the `predictor` of the model type's kinds.KINDS entry. `folder` holds the other verified files
    a kind may need (an ensemble's member folders, loaded with load_folder and the same `model` choice)."""
    return kinds.kind_of(model_type).predictor(data, features, folder, partial(load_folder, model=model))
