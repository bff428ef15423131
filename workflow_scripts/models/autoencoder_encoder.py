"""Optional shared encoder (`encoder=autoencoder`): a small torch autoencoder fitted on the pooled TRAINING
rows of every coin, beside the PCA encoder (workflow_scripts/models/shared_encoder.py) and with the same
interface.

Fit: rows come from `shared_encoder.training_rows` / `training_range` (each coin's training segment only, the
intersection over its windows), so validation and test rows never reach the fit. Each column is standardised
with the training mean and std (NaN ignored; std 1 for constant or all-NaN columns, mean 0 for all-NaN ones);
NaN/inf becomes 0 (the training mean) at the input, and the reconstruction loss (MSE on standardised values)
counts only the entries that were observed, so the network is never taught to reproduce the fill value. Early
stopping on a fixed holdout of the pooled training rows (every `holdout_every`-th row; reconstruction uses no
labels, so this leaks nothing about validation or test).

Saved as ONE canonical JSON file (results/encoder/autoencoder.json, like the PCA encoder's): columns, prefix,
training mean/std and the encoder half's weights as plain float lists (float32 values, exact) - no pickle, no
TorchScript; `load_encoder` rebuilds the module. The encoder version is the sha256 of that file; every head
that consumes the embedding records it (config.json dependencies.encoder_version, heads.Head.encoder_sha256,
torch metadata encoder_sha256). CPU training with fixed seeds is deterministic, so the same pooled rows give
the same file and version.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from workflow_scripts import artifacts

log = logging.getLogger(__name__)

FORMAT = "swingflow-autoencoder-encoder/2"


class EncoderModule(nn.Module):
    """RAW encoder columns (n, p) -> embedding (n, k). Normalisation baked in (NaN/inf -> 0 after
    standardising); refuses a last dimension other than p."""

    def __init__(
        self,
        columns: Sequence[str],
        mean: np.ndarray,
        std: np.ndarray,
        hidden: Sequence[int],
        n_components: int,
        prefix: str,
    ):
        super().__init__()
        self.columns = [str(c) for c in columns]
        self.prefix = str(prefix)
        self.n_columns = len(self.columns)
        self.n_components = int(n_components)
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("std", torch.as_tensor(np.asarray(std, dtype=np.float32)))
        layers: list[nn.Module] = []
        width = self.n_columns
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.GELU()]
            width = int(h)
        layers.append(nn.Linear(width, self.n_components))
        self.net = nn.Sequential(*layers)

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.size(1) != self.n_columns:
            raise RuntimeError(
                "autoencoder encoder: expected (rows, "
                + str(self.n_columns)
                + ") raw encoder columns in the order of its `columns`"
            )
        z = (x.to(self.mean.dtype) - self.mean) / self.std
        return torch.where(torch.isfinite(z), z, torch.zeros_like(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardise(x))


class _Autoencoder(nn.Module):
    def __init__(self, encoder: EncoderModule, hidden: Sequence[int]):
        super().__init__()
        self.encoder = encoder
        layers: list[nn.Module] = []
        width = encoder.n_components
        for h in reversed(list(hidden)):
            layers += [nn.Linear(width, int(h)), nn.GELU()]
            width = int(h)
        layers.append(nn.Linear(width, encoder.n_columns))
        self.decoder = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: standardised, NaN already 0
        return self.decoder(self.encoder.net(z))


@dataclass
class AutoencoderConfig:
    """What shapes one fit. No defaults here: they live in config/encoder/autoencoder.yaml only, and the
    composed group is checked by workflow_scripts/config/models.py (AutoencoderEncoder) before it gets
    here."""

    n_components: int
    hidden: tuple[int, ...]
    prefix: str
    lr: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int
    holdout_every: int
    seed: int
    num_threads: int

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], **overrides) -> AutoencoderConfig:
        """From the validated encoder group ({name, kind, n_components, columns, prefix, seed, num_threads,
        params: {hidden, lr, weight_decay, batch_size, max_epochs, patience, holdout_every}})."""
        p = cfg["params"]
        return cls(
            **{
                "n_components": cfg["n_components"],
                "hidden": tuple(int(h) for h in p["hidden"]),
                "prefix": cfg["prefix"],
                **{
                    k: p[k]
                    for k in ("lr", "weight_decay", "batch_size", "max_epochs", "patience", "holdout_every")
                },
                "seed": cfg["seed"],
                "num_threads": cfg["num_threads"],
                **overrides,
            }
        )


@dataclass
class AutoencoderEncoder:
    module: Any = field(repr=False)  # EncoderModule (eager) or its TorchScript twin (loaded)
    columns: list[str]
    prefix: str
    n_components: int
    n_train_rows: int
    history: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    @property
    def output_columns(self) -> list[str]:
        return [f"{self.prefix}{i:03d}" for i in range(self.n_components)]


def fit_autoencoder_encoder(X_train: pd.DataFrame, cfg: AutoencoderConfig) -> AutoencoderEncoder:
    """Fit on training rows only (pooled across coins by `shared_encoder.training_rows`). CPU, deterministic.
    `cfg` comes from the validated encoder group (AutoencoderConfig.from_config): no defaults of its own."""
    columns = [str(c) for c in X_train.columns if c != "timestamp"]
    X = X_train[columns].to_numpy(dtype=np.float64)
    if len(X) < 2 * cfg.holdout_every:
        raise ValueError(
            f"the autoencoder needs at least {2 * cfg.holdout_every} training rows, got {len(X)}"
        )
    with np.errstate(all="ignore"):
        mean = np.nanmean(X, axis=0)
        std = np.nanstd(X, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    Z = ((X - mean) / std).astype(np.float32)
    observed = np.isfinite(Z)
    Z[~observed] = 0.0
    hold = np.zeros(len(Z), dtype=bool)
    hold[cfg.holdout_every - 1 :: cfg.holdout_every] = True

    det_before, threads_before = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.set_num_threads(cfg.num_threads)
    torch.use_deterministic_algorithms(True)
    start = time.perf_counter()
    try:
        torch.manual_seed(cfg.seed)
        enc = EncoderModule(columns, mean, std, cfg.hidden, min(cfg.n_components, len(columns)), cfg.prefix)
        ae = _Autoencoder(enc, cfg.hidden)
        opt = torch.optim.AdamW(ae.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        z_tr, m_tr = torch.from_numpy(Z[~hold]), torch.from_numpy(observed[~hold])
        z_ho, m_ho = torch.from_numpy(Z[hold]), torch.from_numpy(observed[hold])
        gen = torch.Generator().manual_seed(cfg.seed)
        best, best_state, best_epoch, bad = math.inf, None, -1, 0
        hist: dict = {"train_loss": [], "holdout_loss": []}
        for epoch in range(cfg.max_epochs):
            ae.train()
            perm = torch.randperm(len(z_tr), generator=gen)
            total = 0.0
            for i in range(0, len(perm), cfg.batch_size):
                idx = perm[i : i + cfg.batch_size]
                loss = _masked_mse(ae(z_tr[idx]), z_tr[idx], m_tr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            ae.eval()
            with torch.no_grad():
                ho = float(_masked_mse(ae(z_ho), z_ho, m_ho))
            hist["train_loss"].append(total / len(z_tr))
            hist["holdout_loss"].append(ho)
            if ho < best:
                best, best_epoch, bad = ho, epoch, 0
                best_state = copy.deepcopy(ae.state_dict())
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
        if best_state is not None:
            ae.load_state_dict(best_state)
    finally:
        torch.use_deterministic_algorithms(det_before)
        torch.set_num_threads(threads_before)
    hist.update(
        {
            "epochs_run": len(hist["holdout_loss"]),
            "best_epoch": best_epoch,
            "best_holdout_loss": best,
            "fit_seconds": time.perf_counter() - start,
        }
    )
    cfg_d = asdict(cfg)
    cfg_d["hidden"] = list(cfg.hidden)
    return AutoencoderEncoder(ae.encoder.eval(), columns, cfg.prefix, enc.n_components, len(Z), hist, cfg_d)


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(pred.dtype)
    return ((pred - target) ** 2 * m).sum() / m.sum().clamp_min(1.0)


def transform(encoder: AutoencoderEncoder, X: pd.DataFrame, batch_size: int = 65536) -> pd.DataFrame:
    """Embeddings (float32, columns `{prefix}000`...) for the rows of `X` (same index); columns picked by
    name."""
    missing = [c for c in encoder.columns if c not in X.columns]
    if missing:
        raise ValueError(f"{len(missing)} encoder columns missing, e.g. {missing[:3]}")
    A = X[encoder.columns].to_numpy(dtype=np.float32, copy=True)
    outs = []
    with torch.no_grad():
        for i in range(0, len(A), batch_size):
            outs.append(encoder.module(torch.from_numpy(A[i : i + batch_size])).numpy())
    out = np.concatenate(outs) if outs else np.zeros((0, encoder.n_components), np.float32)
    return pd.DataFrame(out.astype(np.float32), index=X.index, columns=encoder.output_columns)


def append_encoded(features: pd.DataFrame, encoder: AutoencoderEncoder) -> pd.DataFrame:
    """The coin's feature table with the embedding appended as extra columns."""
    return pd.concat([features, transform(encoder, features)], axis=1)


def encoder_document(encoder: AutoencoderEncoder) -> dict:
    """The encoder as plain JSON data: columns, normalisation and the encoder half's weights (float32 values
    written exactly as Python floats), so the file is portable, pickle-free and byte-identical for equal
    weights."""
    state = {k: v.detach().cpu().numpy() for k, v in encoder.module.state_dict().items()}
    linear = sorted((int(k.split(".")[1]), v) for k, v in state.items() if k.endswith(".weight"))
    hidden = [int(w.shape[0]) for _, w in linear[:-1]]  # every Linear but the last (n_components) one
    hist = {k: v for k, v in encoder.history.items() if k != "fit_seconds"}
    return {
        "format": FORMAT,
        "columns": encoder.columns,
        "prefix": encoder.prefix,
        "n_components": encoder.n_components,
        "output_columns": encoder.output_columns,
        "hidden": hidden,
        "mean": state["mean"].astype(np.float32).tolist(),
        "std": state["std"].astype(np.float32).tolist(),
        "layers": {
            k: v.astype(np.float32).tolist() for k, v in sorted(state.items()) if k.startswith("net.")
        },
        "n_train_rows": encoder.n_train_rows,
        "config": encoder.config,
        "history": hist,
    }


def save_encoder(path, encoder: AutoencoderEncoder) -> str:
    """Write the encoder as ONE canonical JSON file (e.g. results/encoder/autoencoder.json) atomically; return
    its version (sha256 of the file). No pickle, no TorchScript: `load_encoder` rebuilds the module from the
    data."""
    artifacts.write_json(path, encoder_document(encoder))
    return encoder_version(path)


def load_encoder(path, expected_sha256: str | None = None) -> AutoencoderEncoder:
    """Rebuild the encoder from its JSON file. With `expected_sha256` (the version a head recorded) a file
    whose sha256 differs is refused before it is read; a wrong format or weight shape is refused naming the
    file."""

    d = artifacts.read_document(path, FORMAT, expected_sha256)
    module = EncoderModule(
        d["columns"],
        np.asarray(d["mean"]),
        np.asarray(d["std"]),
        d["hidden"],
        int(d["n_components"]),
        d["prefix"],
    )
    state = {"mean": module.mean, "std": module.std}
    state |= {k: torch.tensor(v, dtype=torch.float32) for k, v in d["layers"].items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: the stored weights do not fit the stored architecture: {exc}") from exc
    return AutoencoderEncoder(
        module.eval(),
        list(module.columns),
        module.prefix,
        module.n_components,
        int(d["n_train_rows"]),
        d.get("history", {}),
        d.get("config", {}),
    )


def encoder_version(path) -> str:
    return artifacts.sha256_file(Path(path))
