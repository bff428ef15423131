"""One best combination (symbol, window, side): the stage-1 target chosen for it, its feature matrix and rows.

Tuning stages 2-4 and production training read the same inputs the same way:

- the target is the stage-1 choice (`results/best_variant/{symbol}/w{window}/{side}.json`, key `best.target`);
- the features are the symbol's selected list (`results/selection/{symbol}/selected.json`), in that order,
  plus the shared encoder's outputs when an encoder is configured (`shared__pca_000`... or
  `shared__ae_000`..., appended at the end; PCA or autoencoder file, `shared_encoder.load_shared_encoder`);
- the rows are stage 1's (`stage1.variant_rows`): event bars labelled 0/1/2 whose label ends inside their
  segment; `scored` = every event bar of validation and test, which evaluation trades on.

Time semantics: features at row t are known at t; the label of row t is known at `label_end[t]` (t + H).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.models import shared_encoder
from workflow_scripts.training.stage1 import variant_rows


@dataclass
class Combination:
    symbol: str
    window: int
    side: str
    target: str
    X: pd.DataFrame  # float32, one row per bar (position = row number), model features in order
    labels: np.ndarray  # target codes per bar (-3..2)
    label_end: np.ndarray  # int64 bar position of each row's last label bar
    rows: dict[str, np.ndarray]  # train / validation / test / scored bar positions
    split: dict
    targets: pd.DataFrame  # the window's targets table (evaluation reads barrier and exit columns)
    encoder_version: str | None = None

    def segment(self, name: str) -> tuple[pd.DataFrame, np.ndarray]:
        """Features and class codes of one segment's trainable rows."""
        pos = self.rows[name]
        return self.X.iloc[pos], self.labels[pos].astype(np.int64)

    def train_validation_rows(self) -> np.ndarray:
        """Bar positions of the trainable rows of training + validation (never test), in time order."""
        return np.union1d(self.rows["train"], self.rows["validation"])


def no_model_reason(choice: dict) -> str | None:
    """Why a stage-1 choice has no model (every variant skipped: their reasons, one per distinct reason), or
    None when it has a trained variant. Tuning and production carry such a combination through as "no model"
    (models/folder.py write_no_model) instead of stopping the run."""
    best = choice.get("best")
    if best and best.get("target"):
        return None
    reasons: dict[str, list[str]] = {}
    for v in choice.get("variants_ranked") or []:
        reasons.setdefault(str(v.get("reason") or v.get("status") or "no reason recorded"), []).append(
            str(v.get("target"))
        )
    listed = "; ".join(f"{', '.join(targets)}: {reason}" for reason, targets in reasons.items())
    return f"no trained stage-1 variant ({listed or 'no variants'})"


def no_model_record(choice: dict) -> dict | None:
    """The no-model record of a stage-1 choice without a trained variant (symbol, window, side, reason), as
    models/folder.py write_no_model stores it; None when it has a variant."""
    reason = no_model_reason(choice)
    if reason is None:
        return None
    return {k: choice[k] for k in ("symbol", "window", "side")} | {"reason": reason}


def chosen_target(choice: dict, where: str = "stage-1 choice") -> str:
    """The stage-1 target of a combination; a combination without a trained variant cannot be tuned."""
    if no_model_reason(choice) is not None:
        raise ValueError(
            f"{where}: no trained stage-1 variant for {choice.get('symbol')} w{choice.get('window')} "
            f"{choice.get('side')} (every variant was skipped: see its variants_ranked reasons); "
            "tuning and production need one"
        )
    return str(choice["best"]["target"])


def build_combination(
    choice: dict,
    features: pd.DataFrame,
    feature_names: list[str],
    targets: pd.DataFrame,
    split: dict,
    encoder=None,
    encoder_version: str | None = None,
) -> Combination:
    """The combination's matrix and rows from in-memory tables (see the module docstring)."""
    target = chosen_target(choice)
    if target not in targets.columns:
        raise ValueError(f"target {target!r} of the stage-1 choice is not a column of the targets table")
    if not features["timestamp"].equals(targets["timestamp"]):
        raise ValueError("features and targets are not aligned on the same bars (timestamp columns differ)")
    missing = [c for c in feature_names if c not in features.columns]
    if missing:
        raise ValueError(
            f"{len(missing)} selected features are missing from the feature table, e.g. {missing[:3]}"
        )
    X = features[feature_names].astype(np.float32)
    if encoder is not None:
        X = pd.concat([X, shared_encoder.encode(encoder, features)], axis=1)
    X = X.reset_index(drop=True)
    labels = targets[target].to_numpy()
    label_end = targets["label_end"].to_numpy().astype(np.int64)
    return Combination(
        symbol=str(choice["symbol"]),
        window=int(choice["window"]),
        side=str(choice["side"]),
        target=target,
        X=X,
        labels=labels,
        label_end=label_end,
        rows=variant_rows(labels, split, label_end),
        split=split,
        targets=targets,
        encoder_version=encoder_version,
    )


def load_combination(
    choice_path,
    features_path,
    selected_path,
    targets_path,
    split_path,
    encoder_path=None,
    *,
    shared: dict | None = None,
) -> Combination:
    """Read a combination's files (docs/CONTRACTS.md) and build it; errors name the file at fault. `shared`:
    one dict kept over the calls of a job that builds both sides of a (symbol, window): the files they have
    in common (selected list, encoder, feature table, targets, split) are read once, not once per side."""
    choice = artifacts.read_json(choice_path)
    chosen_target(choice, where=str(choice_path))
    shared = {} if shared is None else shared
    key = (str(features_path), str(selected_path), str(targets_path), str(split_path), str(encoder_path))
    if key not in shared:
        shared[key] = _read_tables(features_path, selected_path, targets_path, split_path, encoder_path)
    features, names, targets, split, encoder, version = shared[key]
    try:
        return build_combination(choice, features, names, targets, split, encoder, version)
    except ValueError as exc:
        raise ValueError(
            f"{choice['symbol']} w{choice['window']} {choice['side']} ({features_path}, "
            f"{targets_path}): {exc}"
        ) from exc


def _read_tables(features_path, selected_path, targets_path, split_path, encoder_path):
    """What every side of a (symbol, window) reads alike: (features, selected names, targets, split, encoder,
    encoder version)."""
    selected = json.loads(Path(selected_path).read_text())
    if not isinstance(selected.get("features"), list) or not selected["features"]:
        raise ValueError(f"{selected_path}: expected a non-empty list 'features'")
    names = list(selected["features"])
    encoder, version = None, None
    columns = ["timestamp", *names]
    if encoder_path:
        encoder = shared_encoder.load_shared_encoder(encoder_path)
        version = shared_encoder.encoder_version(encoder_path)
        columns += [c for c in encoder.columns if c not in columns]
    try:
        features = pd.read_parquet(features_path, columns=columns)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{features_path}: cannot read the selected/encoder columns: {exc}") from exc
    return features, names, pd.read_parquet(targets_path), artifacts.read_json(split_path), encoder, version
