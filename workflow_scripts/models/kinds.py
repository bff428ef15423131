"""The one model-kind table: every kind the workflow trains, registers or loads, and what differs between
them. Adding a kind is one `ModelKind` entry in `KINDS` (plus config/model/<kind>.yaml when it is trained).

Readers: config validation of `model.kind` (the kinds with a `fit`), production.fit_head (`fit`),
production.refit_head (`refit`: the deployment refit on every usable bar), the VIN of
production and ensemble folders (`vin_type`), the production-folder contract models/folder.py (`model_file`,
`model_type` and its `aliases`, `predictor`, `needs_timestamps`), the GPU resource of rule fit_production
(`uses_gpu`).

Several kinds may share a registry model type (torch_mlp and torch_transformer are both "torchscript", the two
ensemble kinds "ensemble"): they then share the model file, predictor and needs_timestamps (checked below),
which is all the folder contract dispatches on.

torch is a heavy optional dependency: the torch entries point at small functions here that import
models/torch_models.py when called (function-level imports of a project module, each marked `# heavy: torch`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from workflow_scripts.artifacts import read_verified
from workflow_scripts.models import ensembles, heads
from workflow_scripts.targets.swing_targets import segment_position


class FittedHead(Protocol):
    """What a `fit` returns (heads.TreeHead, torch_models.TorchHead) and production.py uses."""

    @property
    def kind(self) -> str: ...  # the ModelKind name (config.json model_kind)

    @property
    def model_type(self) -> str: ...  # the registry model type (config.json model_type)

    @property
    def vin_type(self) -> str: ...  # the VIN's TYPE field

    @property
    def best_iteration(self) -> int: ...

    @property
    def native_params(self) -> dict: ...  # what the library was given

    @property
    def log(self) -> dict: ...  # facts for training_log.json (hashed: no timings)

    # (rows, 3) probabilities: 0 neither, 1 breakout, 2 reversion
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...

    def save(self, folder) -> Path: ...  # writes the ONE model file, returns its path


# fit(spec, X_train, y_train, X_val, y_val, params, seed, threads, model_cfg, bars=None, timestamps=None),
# `spec` the kind's own ModelKind entry
Fit = Callable[..., FittedHead]
# refit(spec, X, y, params, seed, threads, model_cfg, *, rounds, bars=None, timestamps=None): the same head on
# every usable row, exactly `rounds` boosting rounds / epochs, no early stopping (production.refit_rounds)
Refit = Callable[..., FittedHead]
# predictor(data, features, folder, load_folder) -> (model, predict), where
# predict(X float32 (n, features)[, timestamps]) -> (n, 3) probabilities;
# `data` the verified bytes of the model file, `features` features.json's list, `folder` the verified folder,
# `load_folder` models/folder.load_folder for nested model folders (an ensemble's members).
Predictor = Callable[[bytes, list[str], Path, Callable[[Path], Any]], tuple[Any, Callable[..., np.ndarray]]]


@dataclass(frozen=True)
class ModelKind:
    name: str  # config/model `kind`; config.json `model_kind`
    model_file: str  # the ONE model file of its production folder
    model_type: str  # the registry's model type (config.json `model_type`, index entries)
    vin_type: str  # the VIN's TYPE field
    predictor: Predictor  # registered folder -> predict function
    fit: Fit | None = None  # production.fit_head's trainer; None: not trained by fit_production
    refit: Refit | None = None  # production.refit_head's trainer (deployment refit); None: no refit
    # refit rounds scale with the sample (boosting rounds); False: the best epoch count as is (an epoch over
    # the larger sample already takes proportionally more gradient steps), production.refit_rounds
    refit_scaled: bool = True
    aliases: tuple[str, ...] = ()  # other names of `model_type` (registry CLI filters)
    uses_gpu: bool = False  # fit_production asks for one GPU
    needs_timestamps: bool = False  # predict(X, timestamps): windows of consecutive bars, gaps end them


def _fit_torch(kind: ModelKind, *args, **kwargs) -> FittedHead:
    from workflow_scripts.models.torch_models import fit_torch_head  # heavy: torch

    return fit_torch_head(kind.name, *args, **kwargs)


def _refit_torch(kind: ModelKind, *args, **kwargs) -> FittedHead:
    from workflow_scripts.models.torch_models import refit_torch_head  # heavy: torch

    return refit_torch_head(kind.name, *args, **kwargs)


def _torch_predictor(data: bytes, features: list[str], folder: Path, load_folder) -> tuple[Any, Callable]:
    from workflow_scripts.models.torch_models import rows_predictor  # heavy: torch

    return rows_predictor(data, features)


# What the two torch kinds and the two ensemble kinds share.
_TORCH: dict[str, Any] = {
    "model_file": "model.pt",
    "model_type": "torchscript",
    "aliases": ("torch", "pt"),
    "predictor": _torch_predictor,
    "fit": _fit_torch,
    "refit": _refit_torch,
    "refit_scaled": False,
    "uses_gpu": True,
    "needs_timestamps": True,
}
_ENSEMBLE: dict[str, Any] = {
    "model_file": ensembles.ENSEMBLE_FILE,
    "model_type": "ensemble",
    "predictor": ensembles.predictor,
    "needs_timestamps": True,
}

# ---- the RL line (workflow_scripts/agents, docs/AGENTS.md): TorchScript files only, never an SB3 pickle ----
# An agent or hybrid policy maps observations (n, D) (features.json: `<feature>@t-<lag>` columns of the
# lookback window, oldest first, then the position state) to (n, 3) action weights (flat, long, short): a
# discrete policy's action probabilities, a continuous position p as (1 - |p|, max(p, 0), max(-p, 0)). The
# agent ensemble averages its members' positions or weights. The CNN-LSTM maps feature rows (n, F) and their
# timestamps to embeddings (n, E) (LoadedModel.predict_proba refuses it, not 3 columns: its predict function
# is the API).
AGENT_ENSEMBLE_FILE = "agent_ensemble.json"
N_POSITION_STATE = 3  # position, unrealised log return, log1p(bars in trade): agents/environment.py


def observation_slice(obs: np.ndarray, lookback: int, member_lookback: int, n_features: int) -> np.ndarray:
    """A member's observation from an ensemble observation of `lookback` rows: its last `member_lookback`
    feature rows and the position state."""
    width = int(lookback) * int(n_features)
    if obs.shape[-1] != width + N_POSITION_STATE:
        raise ValueError(f"observation of {obs.shape[-1]} values, not {width + N_POSITION_STATE}")
    rows = obs[..., width - int(member_lookback) * int(n_features) : width]
    return np.concatenate([rows, obs[..., width:]], axis=-1)


def _policy_predictor(data: bytes, features: list[str], folder: Path, load_folder) -> tuple[Any, Callable]:
    import torch  # heavy: torch

    from workflow_scripts.models.torch_models import load_scripted  # heavy: torch

    module = load_scripted(data)
    if int(module.n_obs) != len(features):
        raise ValueError(
            f"policy reads {int(module.n_obs)} observation values, features.json lists {len(features)}"
        )

    def predict(X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module.weights(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))).numpy()

    return module, predict


def _agent_ensemble_predictor(data: bytes, features: list[str], folder: Path, load_folder):
    import torch  # heavy: torch

    from workflow_scripts.models.torch_models import load_scripted  # heavy: torch

    doc = json.loads(data)
    n_features = len(doc["observation"]["features"])
    members = [
        (
            m["lookback"],
            load_scripted(read_verified(folder / m["file"], m["sha256"], folder / AGENT_ENSEMBLE_FILE)),
        )
        for m in doc["members"]
    ]

    def predict(X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        with torch.no_grad():
            parts = [
                net.weights(torch.from_numpy(observation_slice(X, doc["lookback"], lb, n_features))).numpy()
                if doc["method"] == "probabilities"
                else net(torch.from_numpy(observation_slice(X, doc["lookback"], lb, n_features))).numpy()
                for lb, net in members
            ]
        if doc["method"] == "probabilities":
            return np.mean(parts, axis=0)
        p = np.clip(np.mean(parts, axis=0), -1.0, 1.0)
        return np.stack([1.0 - np.abs(p), np.maximum(p, 0.0), np.maximum(-p, 0.0)], axis=1)

    return members, predict


def _cnn_lstm_predictor(data: bytes, features: list[str], folder: Path, load_folder):
    import torch  # heavy: torch

    from workflow_scripts.models.torch_models import gather_windows, load_scripted  # heavy: torch

    module = load_scripted(data)
    if int(module.n_features) != len(features):
        raise ValueError(
            f"cnn_lstm reads {int(module.n_features)} features, features.json lists {len(features)}"
        )

    def predict(X: np.ndarray, timestamps=None) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        seg = (
            np.arange(len(X))
            if timestamps is None
            else segment_position(pd.Series(timestamps).reset_index(drop=True))
        )
        windows = gather_windows(X, seg, np.arange(len(X)), int(module.seq_len))
        with torch.no_grad():
            return module(torch.from_numpy(windows)).numpy()

    return module, predict


_AGENT: dict[str, Any] = {"model_file": "policy.pt", "model_type": "agent", "predictor": _policy_predictor}
_HYBRID: dict[str, Any] = {
    "model_file": "hybrid_policy.pt",
    "model_type": "hybrid",
    "predictor": _policy_predictor,
}

KINDS: dict[str, ModelKind] = {
    k.name: k
    for k in (
        ModelKind(
            "lightgbm",
            "model.txt",
            "lightgbm",
            "LGBM",
            heads.tree_predictor("lightgbm"),
            heads.fit_tree,
            refit=heads.refit_tree,
            aliases=("lgbm",),
        ),
        ModelKind(
            "xgboost",
            "model.json",
            "xgboost",
            "XGB",
            heads.tree_predictor("xgboost"),
            heads.fit_tree,
            refit=heads.refit_tree,
            aliases=("xgb",),
        ),
        ModelKind("torch_mlp", vin_type="TMLP", **_TORCH),
        ModelKind("torch_transformer", vin_type="TXFMR", **_TORCH),
        ModelKind("ensemble_average", vin_type="ENSAVG", **_ENSEMBLE),
        ModelKind("ensemble_stacker", vin_type="ENSSTK", **_ENSEMBLE),
        # the RL line; vin_type = the trial codes' TYPE (agents/trial_code.py)
        ModelKind(
            "cnn_lstm", "cnn_lstm.pt", "cnn_lstm", "CNNLSTM", _cnn_lstm_predictor, needs_timestamps=True
        ),
        ModelKind("ppo", vin_type="PPO", aliases=("rl_agent",), **_AGENT),
        ModelKind("sac", vin_type="SAC", **_AGENT),
        ModelKind("td3", vin_type="TD3", **_AGENT),
        ModelKind("hybrid_ppo", vin_type="HPPO", **_HYBRID),
        ModelKind("hybrid_sac", vin_type="HSAC", **_HYBRID),
        ModelKind("hybrid_td3", vin_type="HTD3", **_HYBRID),
        ModelKind(
            "agent_ensemble", AGENT_ENSEMBLE_FILE, "agent_ensemble", "AGENS", _agent_ensemble_predictor
        ),
    )
}
TRAINABLE = tuple(name for name, k in KINDS.items() if k.fit)  # what config/model `kind` may be
MODEL_TYPE_ALIASES = {alias: k.model_type for k in KINDS.values() for alias in (k.model_type, *k.aliases)}


def _by_model_type(kinds: dict[str, ModelKind]) -> dict[str, ModelKind]:
    """Registry model type -> its first kind; the kinds of one type must agree on what the folder contract
    reads."""
    out: dict[str, ModelKind] = {}
    for k in kinds.values():
        first = out.setdefault(k.model_type, k)
        if (first.model_file, first.predictor, first.needs_timestamps) != (
            k.model_file,
            k.predictor,
            k.needs_timestamps,
        ):
            raise ValueError(
                f"kinds {first.name} and {k.name} share model type {k.model_type!r} but not its "
                "model file, predictor or needs_timestamps"
            )
    return out


_BY_TYPE = _by_model_type(KINDS)
MODEL_FILES = {t: k.model_file for t, k in _BY_TYPE.items()}  # registry model type -> model file


def kind_of(name_or_alias: str) -> ModelKind:
    """The entry of a kind name, or of a registry model type or alias (then the first kind of that type: every
    kind of a type shares what the folder contract reads). KeyError naming the known ones."""
    key = str(name_or_alias).strip().lower()
    if key in KINDS:
        return KINDS[key]
    if key in MODEL_TYPE_ALIASES:
        return _BY_TYPE[MODEL_TYPE_ALIASES[key]]
    raise KeyError(
        f"unknown model kind or type {name_or_alias!r}; kinds: {sorted(KINDS)}, "
        f"model types: {sorted(MODEL_FILES)}"
    )
