"""Neural per-coin heads (`model=torch_mlp`, `model=torch_transformer`): 3-class swing outcome models on a
window of the selected features, exported as TorchScript that takes RAW feature values.

Time semantics: the prediction for bar t reads the feature rows of bars t-T+1 .. t (T = `seq_len`), all known
at t. A window never reaches across a gap or before the first bar: those positions are NaN, which the model
maps to the training mean (the same rule as a NaN feature). `seg_pos[t]` (bars since the last gap,
`swing_targets.segment_position`) decides which positions are real.

Pieces (docs/TORCH_MODELS.md has the why):
  select_device            cuda (if a tiny kernel really runs), then mps, then cpu
  MLPCore / TransformerCore   the networks on standardised windows (B, T, F) -> logits (B, 3)
  SwingNet                 core + baked-in normalisation (mean/std buffers, NaN/inf -> 0 after standardising),
                           shape checks, feature names; `predict_proba_rows` windows a bar matrix inside the
                           module
  FeatureMatrix / WindowBatches   the feature matrix as .npy read through np.load(mmap_mode='r'); windows are
                           cut by index per batch, never materialised for the whole table
  train_torch_model        AdamW, early stopping on the chronological validation rows (cross-entropy), AMP on
                           CUDA, torch.compile with eager fallback, batch halving on CUDA OOM, CPU fallback
  export_model / load_model / predict_proba   model.pt + metadata.json + feature_spec.json; column checks
  module_bytes             model.pt scripted and saved in a fresh interpreter: same weights, same bytes
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import math
import os
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from workflow_scripts import artifacts
from workflow_scripts.data import ingest
from workflow_scripts.features import add_cross_coin, build_features, validate_spec
from workflow_scripts.targets.swing_targets import CLASS_NAMES, segment_position

log = logging.getLogger(__name__)

NUM_CLASS = 3
MODEL_FILE = "model.pt"
METADATA_FILE = "metadata.json"
FEATURE_SPEC_FILE = "feature_spec.json"
REFERENCE_FILE = "reference_predictions.npz"
METADATA_FORMAT = "swingflow-torch-model/1"
FEATURE_SPEC_FORMAT = "swingflow-feature-spec/1"
ARCHS = ("mlp", "transformer")
KIND_TO_ARCH = {"torch_mlp": "mlp", "torch_transformer": "transformer"}
# Scripted vs eager logits on the same CPU input: same ops, same order; measured max |diff| is 0 (float32) but
# the documented promise is this tolerance.
PARITY_ATOL = 1e-5


# -- device --------------------------------------------------------------------------------------------------
def select_device(prefer: str = "auto") -> torch.device:
    """`auto`: the first of cuda, mps, cpu that actually runs a tiny kernel; or the named device (no probing).

    A CUDA build on a machine whose driver is broken reports `is_available()` True and fails on first use, so
    the probe runs one small op; any failure falls through to the next device (logged)."""
    if prefer != "auto":
        return torch.device(prefer)
    candidates = []
    if torch.cuda.is_available():
        candidates.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        candidates.append("mps")
    for name in candidates:
        try:
            x = torch.ones(8, device=name)
            float((x * 2).sum().item())
            return torch.device(name)
        except Exception as exc:  # noqa: BLE001  (a device that cannot run a kernel is not usable)
            log.warning(
                "device %s is reported available but failed a probe (%s); trying the next one", name, exc
            )
    return torch.device("cpu")


def amp_dtype_for(device: torch.device, amp: str = "auto") -> torch.dtype | None:
    """Autocast dtype: on CUDA bf16 where supported, else fp16 (`auto`); `off` or a non-CUDA device: None."""
    if amp == "off" or device.type != "cuda":
        return None
    if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


# -- networks ------------------------------------------------------------------------------------------------
class MLPCore(nn.Module):
    """Flattened window (B, T*F) -> hidden layers (GELU, dropout) -> logits (B, 3)."""

    def __init__(
        self, n_features: int, seq_len: int, hidden: Sequence[int] = (128, 64), dropout: float = 0.1
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features * seq_len
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.GELU(), nn.Dropout(dropout)]
            width = int(h)
        layers.append(nn.Linear(width, NUM_CLASS))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.flatten(1))

    def init_kwargs(self) -> dict:
        """The constructor's keyword arguments besides (n_features, seq_len), read off the layers."""
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        drops = [m.p for m in self.net if isinstance(m, nn.Dropout)]
        return {"hidden": [m.out_features for m in linears[:-1]], "dropout": drops[0] if drops else 0.0}


class _Block(nn.Module):
    """Pre-norm transformer block written out with plain ops: no fused fast path, so eager, scripted and every
    device run the same arithmetic (parity and determinism)."""

    def __init__(self, d_model: int, n_heads: int, ff_mult: int, dropout: float):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, ff_mult * d_model)
        self.ff2 = nn.Linear(ff_mult * d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.size(0), x.size(1), x.size(2)
        qkv = self.qkv(self.ln1(x)).reshape(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale, dim=-1)
        o = torch.matmul(self.drop(att), v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.proj(o))
        return x + self.drop(self.ff2(F.gelu(self.ff1(self.ln2(x)))))


class TransformerCore(nn.Module):
    """Window (B, T, F) -> linear embedding + learned positions -> pre-norm blocks -> [last bar, mean] ->
    logits.

    No causal mask: every bar in the window is already known at t (the last position)."""

    def __init__(
        self,
        n_features: int,
        seq_len: int,
        d_model: int = 32,
        n_heads: int = 4,
        n_layers: int = 2,
        ff_mult: int = 2,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.embed = nn.Linear(n_features, d_model)
        self.pos = nn.Parameter(torch.zeros(seq_len, d_model))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList([_Block(d_model, n_heads, ff_mult, dropout) for _ in range(n_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.out = nn.Linear(2 * d_model, NUM_CLASS)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.embed(z) + self.pos
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        return self.out(torch.cat([h[:, -1], h.mean(dim=1)], dim=1))

    def init_kwargs(self) -> dict:
        """The constructor's keyword arguments besides (n_features, seq_len), read off the layers."""
        d_model = self.embed.out_features
        if not len(self.blocks):
            return {"d_model": d_model, "n_layers": 0}
        first = self.blocks[0]
        return {
            "d_model": d_model,
            "n_heads": first.n_heads,
            "n_layers": len(self.blocks),
            "ff_mult": first.ff1.out_features // d_model,
            "dropout": first.drop.p,
        }


class SwingNet(nn.Module):
    """RAW feature windows (B, T, F) (or (B, F) when T = 1) -> logits (B, 3) of (neither, breakout,
    reversion).

    The training normalisation is baked in: z = (x - mean) / std with the training rows' mean and std (std 1
    for a constant or all-NaN column, mean 0 for an all-NaN one); any non-finite z (NaN feature, padded window
    position, inf) becomes 0, i.e. the training mean. Refuses an input whose last dimension is not the number
    of features the model was trained on, or whose window length differs."""

    def __init__(
        self,
        core: nn.Module,
        mean: np.ndarray,
        std: np.ndarray,
        feature_names: Sequence[str],
        seq_len: int,
        arch: str,
    ):
        super().__init__()
        self.core = core
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("std", torch.as_tensor(np.asarray(std, dtype=np.float32)))
        self.n_features = len(feature_names)
        self.seq_len = int(seq_len)
        self.feature_names = [str(c) for c in feature_names]
        self.arch = str(arch)
        if self.mean.shape != (self.n_features,) or self.std.shape != (self.n_features,):
            raise ValueError("mean and std must have one value per feature")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.dim() != 3:
            raise RuntimeError(
                "SwingNet expects raw features shaped (batch, seq_len, n_features); got "
                + str(x.dim())
                + " dimensions"
            )
        if x.size(2) != self.n_features:
            raise RuntimeError(
                "SwingNet: wrong number of features in the last dimension: expected "
                + str(self.n_features)
                + " (in the order of metadata.json feature_names), got "
                + str(x.size(2))
            )
        if x.size(1) != self.seq_len:
            raise RuntimeError(
                "SwingNet: wrong window length: expected seq_len "
                + str(self.seq_len)
                + ", got "
                + str(x.size(1))
            )
        z = (x.to(self.mean.dtype) - self.mean) / self.std
        z = torch.where(torch.isfinite(z), z, torch.zeros_like(z))
        return self.core(z)

    @torch.jit.export
    def predict_proba_rows(self, bars: torch.Tensor, seg_pos: torch.Tensor) -> torch.Tensor:
        """Class probabilities (n, 3) for every row of a bar-ordered RAW feature matrix (n, F); `seg_pos` (n,)
        is bars since the last gap. Windows are cut here (chunks of 4096 rows), with the same masking as
        training."""
        if bars.dim() != 2 or bars.size(1) != self.n_features:
            raise RuntimeError(
                "SwingNet.predict_proba_rows: expected a (rows, "
                + str(self.n_features)
                + ") feature matrix in the order of metadata.json feature_names"
            )
        if seg_pos.dim() != 1 or seg_pos.size(0) != bars.size(0):
            raise RuntimeError("SwingNet.predict_proba_rows: seg_pos must have one entry per row")
        n = bars.size(0)
        t = self.seq_len
        pad = torch.full([t - 1, self.n_features], float("nan"), dtype=bars.dtype, device=bars.device)
        padded = torch.cat([pad, bars], dim=0)
        # offset of window position j from the predicted bar: t-1-j bars back
        back = torch.arange(t - 1, -1, -1, device=bars.device)
        outs: list[torch.Tensor] = []
        start = 0
        while start < n:
            stop = min(n, start + 4096)
            win = padded[start : stop + t - 1].unfold(0, t, 1).permute(0, 2, 1)
            ok = back.unsqueeze(0) <= seg_pos[start:stop].unsqueeze(1)
            win = torch.where(ok.unsqueeze(2), win, torch.full_like(win, float("nan")))
            outs.append(torch.softmax(self.forward(win).double(), dim=1))
            start = stop
        if len(outs) == 0:
            return torch.zeros([0, 3], dtype=torch.float64)
        return torch.cat(outs, dim=0)


# -- config --------------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class TorchModelConfig:
    """Everything that shapes one training run. `from_config` reads config/model/torch_{mlp,transformer}.yaml,
    the one home of the values: the fields the YAML sets have no default here. The other architecture's shape
    fields stay None; `min_delta` and `num_threads` are not config keys (the job's threads set the latter)."""

    arch: str
    seq_len: int
    hidden: tuple | None = None  # mlp
    d_model: int | None = None  # transformer
    n_heads: int | None = None
    n_layers: int | None = None
    ff_mult: int | None = None
    dropout: float
    lr: float
    weight_decay: float
    grad_clip: float
    class_weight: str | None  # "balanced" or None
    batch_size: int  # CPU / MPS
    gpu_batch_size: int  # CUDA: large batches
    eval_batch_size: int
    min_batch_size: int  # OOM halving stops here
    max_epochs: int
    patience: int  # epochs without a validation-loss improvement > min_delta
    min_delta: float = 0.0
    seed: int
    num_threads: int = 1
    device: str  # auto | cpu | cuda | cuda:N | mps
    amp: str  # auto | bf16 | fp16 | off (CUDA only)
    compile: str  # auto (CUDA only) | on | off
    deterministic: bool  # CPU: use_deterministic_algorithms(True)
    num_workers: int
    cpu_fallback: bool

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], **overrides) -> TorchModelConfig:
        """From a model group dict ({name, kind, seed, num_threads, ..., params: {...}}); unknown keys
        refused. Null keys are skipped: the composed config (workflow_scripts/config/schema.py ModelConfig)
        carries the tree kinds' slots (num_boost_round, ...) as null for a torch model, and null means "the
        default" here."""
        flat = {k: v for k, v in cfg.items() if k not in ("name", "kind", "params") and v is not None}
        flat.update(cfg.get("params") or {})
        if "kind" in cfg:
            if cfg["kind"] not in KIND_TO_ARCH:
                raise ValueError(
                    f"model kind {cfg['kind']!r} is not a torch model; expected {list(KIND_TO_ARCH)}"
                )
            flat["arch"] = KIND_TO_ARCH[cfg["kind"]]
        if "early_stopping_patience" in flat:
            flat["patience"] = flat.pop("early_stopping_patience")
        flat.update(overrides)
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(flat) - known)
        if unknown:
            raise ValueError(f"unknown torch model config key(s) {unknown}; allowed: {sorted(known)}")
        if "hidden" in flat:
            flat["hidden"] = tuple(int(h) for h in flat["hidden"])
        missing = sorted(f.name for f in fields(cls) if f.kw_only and f.name not in flat and _required(f))
        if missing:
            raise ValueError(
                f"torch model config key(s) {missing} missing (config/model/torch_*.yaml sets them)"
            )
        out = cls(**flat)
        if out.arch not in ARCHS:
            raise ValueError(f"arch {out.arch!r}: expected one of {ARCHS}")
        unshaped = [name for name in ARCH_SHAPE[out.arch] if getattr(out, name) is None]
        if unshaped:
            raise ValueError(f"arch {out.arch!r} needs params {unshaped}")
        if out.seq_len < 1:
            raise ValueError("seq_len must be >= 1 bar")
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.hidden is not None:
            d["hidden"] = list(self.hidden)
        return d


ARCH_SHAPE = {"mlp": ("hidden",), "transformer": ("d_model", "n_heads", "n_layers", "ff_mult")}


def _required(f) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def build_core(cfg: TorchModelConfig, n_features: int) -> nn.Module:
    if cfg.arch == "mlp":
        return MLPCore(n_features, cfg.seq_len, cfg.hidden, cfg.dropout)
    if cfg.arch == "transformer":
        return TransformerCore(
            n_features, cfg.seq_len, cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.ff_mult, cfg.dropout
        )
    raise ValueError(f"arch {cfg.arch!r}: expected one of {ARCHS}")


# -- data ----------------------------------------------------------------------------------------------------
@dataclass
class FeatureMatrix:
    """A feature table on disk: float32 (n_bars, F) .npy opened with mmap_mode='r', plus the names and
    `seg_pos`.

    Rows are bar positions (docs/CONTRACTS.md), so targets/splits positions index it directly."""

    path: Path
    feature_names: list[str]
    seg_pos: np.ndarray  # (n_bars,) int64, bars since the last gap

    def array(self) -> np.ndarray:
        return np.load(self.path, mmap_mode="r")

    @property
    def n_bars(self) -> int:
        return len(self.seg_pos)


def write_feature_matrix(
    frame: pd.DataFrame, path, feature_names: Sequence[str] | None = None
) -> FeatureMatrix:
    """Save `frame`'s feature columns (default: all but `timestamp`, in order) as a C-order float32 .npy
    (atomic)."""
    if "timestamp" not in frame.columns:
        raise ValueError("the feature table needs its 'timestamp' column (gaps decide where windows stop)")
    names = [c for c in frame.columns if c != "timestamp"] if feature_names is None else list(feature_names)
    check_columns(list(frame.columns), names, allow_extra=True, what="feature table")
    seg = segment_position(frame["timestamp"]).astype(np.int64)
    path = Path(path)
    with artifacts.atomic_path(path) as tmp:
        mat = np.ascontiguousarray(frame[names].to_numpy(dtype=np.float32))
        with open(tmp, "wb") as fh:
            np.save(fh, mat)
        del mat
    return FeatureMatrix(path, names, seg)


def window_index(rows: np.ndarray, seg_pos: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(index (B, T) into the bar matrix, valid mask (B, T)) for the windows ending at `rows`; invalid =
    before the first bar or across a gap (those positions read bar 0 and are set to NaN by the caller)."""
    rows = np.asarray(rows, dtype=np.int64)
    back = np.arange(seq_len - 1, -1, -1, dtype=np.int64)
    idx = rows[:, None] - back[None, :]
    valid = back[None, :] <= seg_pos[rows][:, None]
    return np.where(valid, idx, 0), valid


def gather_windows(arr: np.ndarray, seg_pos: np.ndarray, rows: np.ndarray, seq_len: int) -> np.ndarray:
    """RAW windows (B, T, F) float32 for `rows`, read by index from `arr` (a memmap reads only these bars)."""
    idx, valid = window_index(rows, seg_pos, seq_len)
    flat = np.unique(idx)
    block = np.asarray(arr[flat], dtype=np.float32)  # one sorted read from the memmap
    win = block[np.searchsorted(flat, idx)]
    win[~valid] = np.nan
    return win


class WindowBatches(torch.utils.data.Dataset):
    """Map-style dataset whose items are whole batches: item i = (windows (B, T, F), labels (B,)) for the i-th
    list of row positions. Used with `DataLoader(batch_size=None)`, so a batch is one vectorised memmap
    read."""

    def __init__(
        self, matrix: FeatureMatrix, batches: list[np.ndarray], labels_by_row: np.ndarray, seq_len: int
    ):
        self.matrix = matrix
        self.batches = batches
        self.labels_by_row = labels_by_row
        self.seq_len = seq_len
        self._arr = None

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        if self._arr is None:  # opened lazily so worker processes each map the file themselves
            self._arr = self.matrix.array()
        rows = self.batches[i]
        x = gather_windows(self._arr, self.matrix.seg_pos, rows, self.seq_len)
        return torch.from_numpy(x), torch.from_numpy(self.labels_by_row[rows].astype(np.int64))


def normalisation_stats(
    matrix: FeatureMatrix, train_rows: np.ndarray, seq_len: int, chunk: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (float64, NaN ignored, two passes in chunks) over the bars the training windows read:
    [min(train_rows) - T + 1, max(train_rows)]. std -> 1 where not finite or 0; mean -> 0 where all NaN."""
    arr = matrix.array()
    lo = max(0, int(np.min(train_rows)) - seq_len + 1)
    hi = int(np.max(train_rows)) + 1
    p = arr.shape[1]
    s, c = np.zeros(p), np.zeros(p)
    for a in range(lo, hi, chunk):
        x = np.asarray(arr[a : min(hi, a + chunk)], dtype=np.float64)
        ok = np.isfinite(x)
        s += np.where(ok, x, 0.0).sum(0)
        c += ok.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(c > 0, s / np.maximum(c, 1), 0.0)
    ss = np.zeros(p)
    for a in range(lo, hi, chunk):
        x = np.asarray(arr[a : min(hi, a + chunk)], dtype=np.float64)
        d = np.where(np.isfinite(x), x - mean, 0.0)
        ss += (d * d).sum(0)
    std = np.sqrt(ss / np.maximum(c, 1))
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    return mean, std


# -- training ------------------------------------------------------------------------------------------------
@dataclass
class TrainedModel:
    module: SwingNet  # CPU, float32, eval mode, best epoch's weights
    config: TorchModelConfig
    history: dict
    n_rows: dict
    class_counts: dict
    encoder_sha256: str | None = None

    @property
    def feature_names(self) -> list[str]:
        return list(self.module.feature_names)


StepHook = Callable[[int, torch.device], None]  # (batch rows, device) before every training step


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _batches(rows: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]


def _loader(matrix, batches, labels_by_row, cfg, device):
    ds = WindowBatches(matrix, batches, labels_by_row, cfg.seq_len)
    return torch.utils.data.DataLoader(
        ds,
        batch_size=None,
        shuffle=False,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )


def _class_weights(y: np.ndarray, mode: str | None) -> torch.Tensor | None:
    if mode is None:
        return None
    if mode != "balanced":
        raise ValueError(f"class_weight {mode!r}: expected 'balanced' or null")
    counts = np.bincount(y, minlength=NUM_CLASS).astype(np.float64)
    w = np.where(counts > 0, len(y) / (NUM_CLASS * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def train_torch_model(
    matrix: FeatureMatrix,
    rows: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    cfg: TorchModelConfig,
    *,
    encoder_sha256: str | None = None,
    step_hook: StepHook | None = None,
    fixed_epochs: int | None = None,
) -> TrainedModel:
    """Fit on rows["train"] (bar positions, labels 0/1/2), early-stop on rows["validation"] (mean
    cross-entropy). With `fixed_epochs` (a refit, training/production.py refit_rounds) exactly that many
    epochs run on rows["train"], rows["validation"] may be empty and the last epoch's weights are kept.

    Device from `cfg.device` (`select_device`). If training on a GPU fails for any reason other than an OOM
    that batch halving absorbs, it is logged and retried from scratch on the CPU (`cfg.cpu_fallback`); the
    history records `device_fallback`. `step_hook` is called before each training step (tests raise a
    simulated OOM)."""
    y_tr = _labels(labels["train"], rows["train"])
    y_va = _labels(labels["validation"], rows["validation"])
    if len(y_tr) == 0 or (len(y_va) == 0 and not fixed_epochs):
        raise ValueError("need at least one training and one validation row")
    device = select_device(cfg.device)
    try:
        return _train_on(device, matrix, rows, y_tr, y_va, cfg, encoder_sha256, step_hook, fixed_epochs)
    except Exception as exc:
        if device.type == "cpu" or not cfg.cpu_fallback:
            raise
        log.warning("training on %s failed (%s: %s); retrying on cpu", device, type(exc).__name__, exc)
        out = _train_on(
            torch.device("cpu"), matrix, rows, y_tr, y_va, cfg, encoder_sha256, step_hook, fixed_epochs
        )
        out.history["device_fallback"] = {"from": str(device), "error": f"{type(exc).__name__}: {exc}"[:500]}
        return out


def _labels(y, rows) -> np.ndarray:
    y = np.asarray(y)
    if len(y) != len(rows):
        raise ValueError("labels and rows differ in length")
    if y.size and (y.min() < 0 or y.max() >= NUM_CLASS):
        raise ValueError("labels must be class codes 0, 1, 2 (drop -1/-2/-3 rows first)")
    return y.astype(np.int64)


def _train_on(
    device: torch.device,
    matrix: FeatureMatrix,
    rows,
    y_tr,
    y_va,
    cfg: TorchModelConfig,
    encoder_sha256,
    step_hook,
    fixed_epochs: int | None = None,
) -> TrainedModel:
    start = time.perf_counter()
    tr_rows = np.asarray(rows["train"], dtype=np.int64)
    va_rows = np.asarray(rows["validation"], dtype=np.int64)
    labels_by_row = np.full(matrix.n_bars, -1, dtype=np.int64)
    labels_by_row[tr_rows] = y_tr
    labels_by_row[va_rows] = y_va

    det_before = torch.are_deterministic_algorithms_enabled()
    threads_before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(cfg.num_threads)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(cfg.seed)
        mean, std = normalisation_stats(matrix, tr_rows, cfg.seq_len)
        model = SwingNet(
            build_core(cfg, len(matrix.feature_names)), mean, std, matrix.feature_names, cfg.seq_len, cfg.arch
        ).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        w = _class_weights(y_tr, cfg.class_weight)
        loss_fn = nn.CrossEntropyLoss(weight=None if w is None else w.to(device))
        amp = amp_dtype_for(device, cfg.amp)
        scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
        compile_info = {"requested": cfg.compile, "used": False, "fallback_error": None}
        step_model: Callable = model
        if cfg.compile == "on" or (cfg.compile == "auto" and device.type == "cuda"):
            try:
                step_model = torch.compile(model)
                compile_info["used"] = True
            except Exception as exc:  # noqa: BLE001  (any compiler failure -> eager)
                compile_info["fallback_error"] = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("torch.compile failed (%s); continuing eager", exc)
        compile_checked = not compile_info["used"]

        bs = cfg.gpu_batch_size if device.type == "cuda" else cfg.batch_size
        eval_bs = cfg.eval_batch_size
        gen = torch.Generator().manual_seed(cfg.seed)
        hist: dict = {"train_loss": [], "val_loss": [], "batch_size": [], "oom_events": []}
        best, best_state, best_epoch, bad = math.inf, None, -1, 0
        seen = 0
        train_seconds = 0.0
        for epoch in range(int(fixed_epochs) if fixed_epochs else cfg.max_epochs):
            model.train()
            perm = tr_rows[torch.randperm(len(tr_rows), generator=gen).numpy()]
            pos, total, n_ep = 0, 0.0, 0
            t_ep = time.perf_counter()
            while pos < len(perm):
                loader = _loader(matrix, _batches(perm[pos:], bs), labels_by_row, cfg, device)
                try:
                    for xb, yb in loader:
                        if step_hook is not None:
                            step_hook(len(yb), device)
                        xb = xb.to(device, non_blocking=True)
                        yb = yb.to(device, non_blocking=True)
                        with torch.autocast(
                            device_type=device.type, dtype=amp or torch.bfloat16, enabled=amp is not None
                        ):
                            try:
                                logits = step_model(xb)
                            except Exception as exc:
                                if compile_checked or _is_oom(exc):
                                    raise
                                compile_info["fallback_error"] = f"{type(exc).__name__}: {exc}"[:500]
                                compile_info["used"] = False
                                log.warning(
                                    "compiled model failed on its first batch (%s); continuing eager", exc
                                )
                                step_model = model
                                logits = model(xb)
                            loss = loss_fn(logits.float(), yb)
                        compile_checked = True
                        opt.zero_grad(set_to_none=True)
                        scaler.scale(loss).backward()
                        if cfg.grad_clip:
                            scaler.unscale_(opt)
                            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                        scaler.step(opt)
                        scaler.update()
                        total += float(loss.detach()) * len(yb)
                        n_ep += len(yb)
                        pos += len(yb)
                except Exception as exc:
                    if not _is_oom(exc):
                        raise
                    opt.zero_grad(set_to_none=True)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    if bs // 2 < cfg.min_batch_size:
                        raise RuntimeError(
                            f"out of memory even at batch size {bs} (min_batch_size {cfg.min_batch_size})"
                        ) from exc
                    hist["oom_events"].append(
                        {"epoch": epoch, "at_row": int(pos), "batch_size": bs, "new_batch_size": bs // 2}
                    )
                    log.warning("out of memory at batch size %d; halving to %d and continuing", bs, bs // 2)
                    bs //= 2
            train_seconds += time.perf_counter() - t_ep
            seen += n_ep
            if fixed_epochs:  # a refit: no validation rows, every epoch runs, the last one is kept
                hist["train_loss"].append(total / max(n_ep, 1))
                hist["batch_size"].append(bs)
                best_epoch = epoch
                continue
            val_loss, eval_bs = _val_loss(model, matrix, va_rows, labels_by_row, cfg, device, amp, eval_bs)
            hist["train_loss"].append(total / max(n_ep, 1))
            hist["val_loss"].append(val_loss)
            hist["batch_size"].append(bs)
            if val_loss < best - cfg.min_delta:
                best, best_epoch, bad = val_loss, epoch, 0
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
        if best_state is not None:  # None only if every validation loss was NaN
            model.load_state_dict(best_state)
        module = model.to("cpu").float().eval()
    finally:
        if device.type == "cpu":
            torch.use_deterministic_algorithms(det_before)
            torch.set_num_threads(threads_before)
    hist.update(
        {
            "epochs_run": len(hist["train_loss"]),
            "best_epoch": best_epoch,
            "best_val_loss": best,
            "stopped_early": not fixed_epochs and len(hist["val_loss"]) < cfg.max_epochs,
            "final_batch_size": bs,
            "device": str(device),
            "amp_dtype": None if amp is None else str(amp).replace("torch.", ""),
            "compile": compile_info,
            "train_samples_per_second": seen / train_seconds if train_seconds > 0 else None,
            "fit_seconds": time.perf_counter() - start,
        }
    )
    counts = {
        seg: {CLASS_NAMES[c]: int((y == c).sum()) for c in range(NUM_CLASS)}
        for seg, y in (("train", y_tr), ("validation", y_va))
    }
    return TrainedModel(
        module, cfg, hist, {"train": len(y_tr), "validation": len(y_va)}, counts, encoder_sha256
    )


def _val_loss(model, matrix, va_rows, labels_by_row, cfg, device, amp, eval_bs) -> tuple[float, int]:
    model.eval()
    while True:
        try:
            total, n = 0.0, 0
            with torch.no_grad():
                for xb, yb in _loader(matrix, _batches(va_rows, eval_bs), labels_by_row, cfg, device):
                    xb, yb = xb.to(device), yb.to(device)
                    with torch.autocast(
                        device_type=device.type, dtype=amp or torch.bfloat16, enabled=amp is not None
                    ):
                        logits = model(xb)
                    total += float(F.cross_entropy(logits.float(), yb, reduction="sum"))
                    n += len(yb)
            return total / n, eval_bs
        except Exception as exc:
            if not _is_oom(exc) or eval_bs // 2 < cfg.min_batch_size:
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            eval_bs //= 2


# -- prediction ----------------------------------------------------------------------------------------------
def predict_logits_matrix(
    module: nn.Module,
    matrix: FeatureMatrix,
    rows: np.ndarray,
    batch_size: int = 8192,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Logits (len(rows), 3) float32 for the windows ending at `rows` of an on-disk matrix."""
    arr = matrix.array()
    seq_len = int(module.seq_len)
    outs = []
    module = module.to(device).eval()
    with torch.no_grad():
        for b in _batches(np.asarray(rows, dtype=np.int64), batch_size):
            x = torch.from_numpy(gather_windows(arr, matrix.seg_pos, b, seq_len)).to(device)
            outs.append(module(x).float().cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, NUM_CLASS), np.float32)


def softmax64(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def check_columns(
    columns: Sequence[str], expected: Sequence[str], *, allow_extra: bool = False, what: str = "input"
) -> None:
    """Refuse feature columns that are not exactly `expected` in order (ignoring `timestamp`). With
    `allow_extra`, the expected names need only be present (the caller selects them by name)."""
    cols = [str(c) for c in columns if c != "timestamp"]
    expected = list(expected)
    missing = [c for c in expected if c not in set(cols)]
    if missing:
        raise ValueError(
            f"{what}: {len(missing)} model feature column(s) missing, e.g. {missing[:5]} "
            f"(the model reads {len(expected)} features listed in metadata.json)"
        )
    if allow_extra:
        return
    if len(cols) != len(expected):
        extra = [c for c in cols if c not in set(expected)]
        raise ValueError(
            f"{what}: got {len(cols)} feature columns, the model reads exactly {len(expected)}; "
            f"unexpected: {extra[:5]} (select metadata.json feature_names, in that order)"
        )
    if cols != expected:
        i = next(i for i, (a, b) in enumerate(zip(cols, expected)) if a != b)
        raise ValueError(
            f"{what}: feature columns are in the wrong order: position {i} is {cols[i]!r}, the model "
            f"expects {expected[i]!r} (select metadata.json feature_names, in that order)"
        )


def predict_proba(model, frame: pd.DataFrame, rows: np.ndarray | None = None) -> np.ndarray:
    """Probabilities (n, 3) float64 of (neither, breakout, reversion) for bar positions `rows` (default all)
    of a feature table whose non-timestamp columns are EXACTLY the model's features in order (else
    ValueError).

    `model`: a SwingNet / loaded TorchScript module, a `LoadedTorchModel`, or a model directory. `frame` holds
    every bar in order (positions = rows) with its `timestamp` column (gaps cut windows) unless seq_len is
    1."""
    if isinstance(model, (str, Path)):
        model = load_model(model)
    module = model.module if isinstance(model, LoadedTorchModel) else model
    names = list(module.feature_names)
    check_columns(list(frame.columns), names)
    if "timestamp" in frame.columns:
        seg = segment_position(frame["timestamp"]).astype(np.int64)
    elif int(module.seq_len) == 1:
        seg = np.zeros(len(frame), dtype=np.int64)
    else:
        raise ValueError(
            "a windowed model (seq_len > 1) needs the table's 'timestamp' column to respect gaps"
        )
    X = frame[names].to_numpy(dtype=np.float32, copy=True)
    rows = np.arange(len(frame)) if rows is None else np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return np.zeros((0, NUM_CLASS))
    lo = max(0, int(rows.min()) - int(module.seq_len) + 1)
    hi = int(rows.max()) + 1
    with torch.no_grad():
        proba = module.predict_proba_rows(torch.from_numpy(X[lo:hi]), torch.from_numpy(seg[lo:hi]))
    return proba.numpy()[rows - lo]


# -- export / load -------------------------------------------------------------------------------------------
def script_module(module: nn.Module) -> torch.jit.ScriptModule:
    """torch.jit.script on a CPU float32 eval copy, in this process (parity checks, tests). TorchScript is
    deprecated upstream (torch >= 2.10 warns) but is still the one pickle-free, Python-free archive format the
    contract asks for; the warning is silenced here. model.pt bytes come from `module_bytes`, not from
    this."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..*deprecated", category=DeprecationWarning)
        return torch.jit.script(copy.deepcopy(module).to("cpu").float().eval())


def module_recipe(module: SwingNet) -> dict:
    """What rebuilds `module` apart from its state_dict (JSON-able): arch, features, seq_len, core kwargs."""
    return {
        "arch": module.arch,
        "feature_names": list(module.feature_names),
        "seq_len": module.seq_len,
        "core": module.core.init_kwargs(),
    }


def rebuild_module(recipe: Mapping, state: Mapping[str, torch.Tensor]) -> SwingNet:
    """An eval SwingNet from `module_recipe` + state_dict (strict: every tensor must fit)."""
    core_cls = {"mlp": MLPCore, "transformer": TransformerCore}[recipe["arch"]]
    names = recipe["feature_names"]
    core = core_cls(len(names), recipe["seq_len"], **recipe["core"])
    net = SwingNet(core, np.zeros(len(names)), np.ones(len(names)), names, recipe["seq_len"], recipe["arch"])
    net.load_state_dict(state, strict=True)
    return net.eval()


# What a TorchScript archive depends on besides the model: the process-wide compilation unit (a class whose
# name is already taken gets `___torch_mangle_<N>`, N counting everything scripted before in the process) and
# the string hash seed (the order TorchScript emits module constants in). So model.pt is scripted and saved in
# a fresh interpreter with PYTHONHASHSEED=0: a function of the weights and the recipe only
# (docs/TORCH_MODELS.md).
_EXPORT_CHILD = """
import sys
import torch
from workflow_scripts.models.torch_models import _export_in_this_process
torch.set_num_threads(1)
_export_in_this_process(sys.argv[1], sys.argv[2])
"""


def _export_in_this_process(payload_path: str, out_path: str) -> None:
    """(child side) torch.save'd {recipe, state} -> model.pt file."""
    data = torch.load(payload_path, map_location="cpu", weights_only=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..*deprecated", category=DeprecationWarning)
        torch.jit.save(torch.jit.script(rebuild_module(data["recipe"], data["state"])), out_path)


def module_bytes(module: SwingNet) -> bytes:
    """model.pt bytes (TorchScript SwingNet) for an eager SwingNet: the same weights and recipe give the same
    bytes in any process, whatever it scripted before (scripted in a fresh interpreter, see _EXPORT_CHILD)."""
    import tempfile

    module = copy.deepcopy(module).to("cpu").float().eval()
    recipe = module_recipe(module)
    if repr(rebuild_module(recipe, module.state_dict())) != repr(module):
        raise AssertionError("module_recipe does not rebuild this module")  # a core kwarg the recipe misses
    root = str(Path(__file__).resolve().parents[2])  # the checkout holding this very workflow_scripts package
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="swingflow-export-") as tmp:
        torch.save({"recipe": recipe, "state": module.state_dict()}, Path(tmp) / "in.pt")
        done = subprocess.run(
            [sys.executable, "-c", _EXPORT_CHILD, str(Path(tmp) / "in.pt"), str(Path(tmp) / MODEL_FILE)],
            capture_output=True,
            env=dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=path),
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"TorchScript export failed: {done.stderr.decode(errors='replace')[-2000:]}")
        return (Path(tmp) / MODEL_FILE).read_bytes()


def load_scripted(data: bytes) -> torch.jit.ScriptModule:
    """torch.jit.load from bytes onto the CPU, eval mode (never torch.load / pickle)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..*deprecated", category=DeprecationWarning)
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    module.eval()
    return module


def code_version() -> dict:
    """What regenerating the features depends on: sha256 over workflow_scripts/features/*.py (sorted by name)
    and the git commit when the tree is a checkout."""
    root = Path(__file__).resolve().parents[1]  # workflow_scripts/
    digest = hashlib.sha256()
    for p in sorted((root / "features").glob("*.py")):
        digest.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
            or None
        )
    except Exception:  # noqa: BLE001  (no git, not a checkout: the features hash still identifies the code)
        commit = None
    return {"features_sha256": digest.hexdigest(), "git_commit": commit}


def make_feature_spec(
    features_cfg: Mapping,
    symbol: str,
    cross_symbols: Sequence[str],
    feature_columns: Sequence[str],
    bars_first,
    bars_last,
    *,
    encoder: Mapping | None = None,
    raw_pattern: str = "data/raw/{symbol}_1h.parquet",
) -> dict:
    """The feature_spec.json document: enough to rebuild the model's input columns exactly from raw bars.

    `features_cfg`: the features group (families, lookbacks, lags, dtype); `cross_symbols`: the other coins in
    the cross-coin table (empty if none); `bars_first`/`bars_last`: the ingested span (UTC) - EMAs and rolling
    windows start at the first bar, so the span is part of the recipe; `encoder`: {kind, sha256, prefix} if a
    shared encoder's outputs are among the columns."""

    spec = validate_spec({k: features_cfg[k] for k in ("families", "lookbacks", "lags", "dtype")})
    return {
        "format": FEATURE_SPEC_FORMAT,
        "symbol": str(symbol),
        "cross_coin_symbols": sorted(str(s) for s in cross_symbols if s != symbol),
        "features": spec,
        "feature_columns": [str(c) for c in feature_columns],
        "bars": {
            "first": pd.Timestamp(bars_first).isoformat(),
            "last": pd.Timestamp(bars_last).isoformat(),
            "raw_pattern": raw_pattern,
        },
        "encoder": dict(encoder) if encoder else None,
        "code_version": code_version(),
    }


def regenerate_features(feature_spec: Mapping, raw_dir="data/raw") -> pd.DataFrame:
    """Rebuild `timestamp` + the model's feature columns (in order) from raw bars with the recorded recipe:
    ingest's normalisation, the recorded span, build_features per coin, add_cross_coin."""

    if feature_spec.get("format") != FEATURE_SPEC_FORMAT:
        raise ValueError(f"not a {FEATURE_SPEC_FORMAT} document")
    if feature_spec.get("encoder"):
        raise ValueError(
            "this feature spec includes shared-encoder outputs; append them with the encoder "
            f"{feature_spec['encoder']} before predicting"
        )
    first = pd.Timestamp(feature_spec["bars"]["first"])
    last = pd.Timestamp(feature_spec["bars"]["last"])

    def bars(sym):
        path = ingest.find_raw_file(raw_dir, sym)
        b = ingest.normalise_bars(ingest.read_raw(path), str(path))
        return b[(b["timestamp"] >= first) & (b["timestamp"] <= last)].reset_index(drop=True)

    spec = feature_spec["features"]
    own = build_features(bars(feature_spec["symbol"]), spec)
    others = {s: build_features(bars(s), spec) for s in feature_spec["cross_coin_symbols"]}
    table = add_cross_coin(own, others) if others else own
    cols = list(feature_spec["feature_columns"])
    check_columns(list(table.columns), cols, allow_extra=True, what="regenerated feature table")
    return table[["timestamp", *cols]]


def _write_npz(path, arrays: Mapping[str, np.ndarray]) -> None:
    """np.savez stamps the current time into the zip; this writes a fixed date so equal arrays give equal
    bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(
                zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)),
                member.getvalue(),
                compress_type=zipfile.ZIP_DEFLATED,
            )
    artifacts.write_bytes(path, buf.getvalue())


def export_model(
    out_dir,
    trained: TrainedModel,
    feature_spec: Mapping,
    *,
    reference: Mapping[str, np.ndarray] | None = None,
    extra: Mapping | None = None,
) -> dict:
    """Write model.pt (TorchScript SwingNet), metadata.json, feature_spec.json and, if given, reference
    predictions ({"positions", "timestamp_ns", "proba"} -> reference_predictions.npz); all atomic. Returns the
    metadata. No wall-clock values in any file: equal inputs give equal bytes."""
    out_dir = Path(out_dir)
    module = trained.module
    if list(feature_spec["feature_columns"]) != list(module.feature_names):
        raise ValueError("feature_spec feature_columns differ from the model's features")
    data = module_bytes(module)
    x = torch.randn(4, module.seq_len, module.n_features, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # parity of the very bytes written
        diff = float((load_scripted(data)(x) - module(x)).abs().max())
    if diff > PARITY_ATOL:
        raise AssertionError(f"scripted and eager logits differ by {diff} > {PARITY_ATOL}")
    artifacts.write_bytes(out_dir / MODEL_FILE, data)
    artifacts.write_json(out_dir / FEATURE_SPEC_FILE, dict(feature_spec))
    hist = {
        k: v for k, v in trained.history.items() if k not in ("fit_seconds", "train_samples_per_second")
    }  # timings vary run to run
    meta = {
        "format": METADATA_FORMAT,
        "model_file": MODEL_FILE,
        "model_sha256": artifacts.sha256_file(out_dir / MODEL_FILE),
        "feature_spec_sha256": artifacts.sha256_file(out_dir / FEATURE_SPEC_FILE),
        "arch": trained.config.arch,
        "kind": f"torch_{trained.config.arch}",
        "feature_names": list(module.feature_names),
        "n_features": module.n_features,
        "seq_len": module.seq_len,
        "input": {
            "shape": [-1, module.seq_len, module.n_features],
            "dtype": "float32",
            "values": "raw features",
            "window": "bars t-seq_len+1 .. t; positions before the first bar or across a gap are NaN",
            "nan_policy": "NaN/inf -> training mean (0 after standardising), inside the module",
        },
        "output": {"shape": [-1, NUM_CLASS], "values": "logits; softmax gives probabilities"},
        "classes": [{"code": c, "name": CLASS_NAMES[c]} for c in range(NUM_CLASS)],
        "normalisation": {"mean": module.mean.tolist(), "std": module.std.tolist()},
        "parity": {"scripted_vs_eager_max_abs_diff": diff, "atol": PARITY_ATOL},
        "training": {
            "config": trained.config.to_dict(),
            "history": hist,
            "n_rows": trained.n_rows,
            "class_counts": trained.class_counts,
        },
        "encoder_sha256": trained.encoder_sha256,
        "torch_version": torch.__version__,
        "extra": dict(extra or {}),
    }
    if reference is not None:
        _write_npz(out_dir / REFERENCE_FILE, {k: np.asarray(v) for k, v in reference.items()})
        meta["reference_predictions"] = {
            "file": REFERENCE_FILE,
            "sha256": artifacts.sha256_file(out_dir / REFERENCE_FILE),
        }
    artifacts.write_json(out_dir / METADATA_FILE, meta)
    return meta


@dataclass
class LoadedTorchModel:
    module: torch.jit.ScriptModule = field(repr=False)
    metadata: dict
    feature_spec: dict | None
    folder: Path

    @property
    def feature_names(self) -> list[str]:
        return list(self.metadata["feature_names"])

    def predict_proba(self, frame: pd.DataFrame, rows: np.ndarray | None = None) -> np.ndarray:
        return predict_proba(self, frame, rows)


def load_model(folder) -> LoadedTorchModel:
    """torch.jit.load model.pt (CPU) with its metadata.json; refuse a model whose bytes or feature list
    disagree with metadata.json. feature_spec.json is read if present."""
    folder = Path(folder)
    data = (folder / MODEL_FILE).read_bytes()
    meta = artifacts.read_json(folder / METADATA_FILE)
    if hashlib.sha256(data).hexdigest() != meta["model_sha256"]:
        raise ValueError(
            f"{folder / MODEL_FILE} does not match the sha256 recorded in {folder / METADATA_FILE}"
        )
    module = load_scripted(data)
    if list(module.feature_names) != list(meta["feature_names"]):
        raise ValueError(f"{folder}: model.pt and metadata.json disagree on the feature list")
    spec_path = folder / FEATURE_SPEC_FILE
    spec = artifacts.read_json(spec_path) if spec_path.is_file() else None
    return LoadedTorchModel(module, meta, spec, folder)


def read_reference(folder) -> dict[str, np.ndarray]:
    with np.load(Path(folder) / REFERENCE_FILE, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def state_dict_digest(module: nn.Module) -> str:
    """sha256 over the state_dict tensors (names, dtypes, shapes, bytes): a weight-level identity that does
    not depend on the TorchScript container."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


# -- production head (workflow_scripts/training/production.py FITTERS) ---------------------------------------
VIN_TYPES = {"mlp": "TMLP", "transformer": "TXFMR"}


class TorchHead:
    """A trained SwingNet behind production.fit_head's interface (predict_proba(X), save(folder), kind,
    model_type, vin_type, best_iteration, native_params, log).

    `bars` is the whole bar-ordered feature table the head was trained on (model features in order) and
    `seg_pos` its bars-since-gap counts: `predict_proba(X)` reads the windows ending at X.index (bar
    positions), so X may be any subset of those bars (the scored event rows)."""

    model_type = "torchscript"

    def __init__(self, kind: str, trained: TrainedModel, bars: np.ndarray, seg_pos: np.ndarray):
        self.kind = kind
        self.trained = trained
        self._bars = bars
        self._seg_pos = seg_pos
        hist = trained.history
        self.log = {
            k: hist[k]
            for k in (
                "epochs_run",
                "best_epoch",
                "best_val_loss",
                "stopped_early",
                "device",
                "amp_dtype",
                "compile",
                "oom_events",
                "final_batch_size",
            )
            if k in hist
        }
        # No timings: training_log.json is hashed into sha256.txt and must be the same bytes on every rerun
        # (reliability suite); the job's time is in results/benchmarks/production/.
        self.log |= {"torch_version": torch.__version__}

    @property
    def vin_type(self) -> str:
        return VIN_TYPES[self.trained.config.arch]

    @property
    def best_iteration(self) -> int:
        return int(self.trained.history["best_epoch"]) + 1

    @property
    def native_params(self) -> dict:
        return self.trained.config.to_dict()

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_columns(list(X.columns), self.trained.feature_names)
        rows = X.index.to_numpy(dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self._bars)):
            raise ValueError("X.index must be bar positions of the table the head was trained on")
        module = self.trained.module.eval()
        out = []
        with torch.no_grad():
            for b in _batches(rows, self.trained.config.eval_batch_size):
                x = torch.from_numpy(gather_windows(self._bars, self._seg_pos, b, module.seq_len))
                out.append(softmax64(module(x).numpy()))
        return np.concatenate(out) if out else np.zeros((0, NUM_CLASS))

    def save(self, folder) -> Path:
        """model.pt + metadata.json + feature_spec.json (the feature recipe itself is the folder's
        features.json)."""
        names = self.trained.feature_names
        spec = {
            "format": FEATURE_SPEC_FORMAT,
            "feature_columns": names,
            "seq_len": int(self.trained.module.seq_len),
            "window": "bars t-seq_len+1 .. t of the bar-ordered table; a gap (timestamps > 1 h apart) or the "
            "first bar ends the window (predict_proba_rows(bars, seg_pos))",
            "recipe": "features.json of this folder (spec, universe): workflow_scripts.registry.predictions",
            "code_version": code_version(),
        }
        export_model(folder, self.trained, spec)
        return Path(folder) / MODEL_FILE


def fit_torch_head(
    kind, X_train, y_train, X_val, y_val, params, seed, threads, model_cfg, bars=None, timestamps=None
) -> TorchHead:
    """production.FITTERS entry for torch_mlp / torch_transformer. The architecture and optimiser settings
    come from config/model/<kind>.yaml (`model_cfg`): the tuned LightGBM-named `params` do not apply to a
    network and are ignored. `bars`: the whole bar-ordered feature table and `timestamps` its bars' times (X_*
    hold only the event rows; their index is the bar position, which the windows are cut around; gaps end
    windows). Deterministic on CPU."""
    import tempfile

    if bars is None or timestamps is None or len(timestamps) != len(bars):
        raise ValueError(f"model kind {kind!r} reads a window of bars: pass the bar table and its timestamps")
    names = [str(c) for c in X_train.columns]
    table = pd.concat(
        [pd.DataFrame({"timestamp": np.asarray(timestamps)}), bars[names].reset_index(drop=True)], axis=1
    )
    cfg = TorchModelConfig.from_config(model_cfg, seed=int(seed), num_threads=int(threads))
    rows = {"train": X_train.index.to_numpy(np.int64), "validation": X_val.index.to_numpy(np.int64)}
    with tempfile.TemporaryDirectory(prefix="swingflow-torch-") as tmp:
        matrix = write_feature_matrix(table, Path(tmp) / "X.npy", names)
        trained = train_torch_model(
            matrix, rows, {"train": np.asarray(y_train), "validation": np.asarray(y_val)}, cfg
        )
    return TorchHead(kind, trained, bars[names].to_numpy(np.float32), matrix.seg_pos)


def refit_torch_head(
    kind, X, y, params, seed, threads, model_cfg, *, rounds, bars=None, timestamps=None
) -> TorchHead:
    """The refit of torch_mlp / torch_transformer: `fit_torch_head`'s network and settings trained on every
    usable row `X`, `y` for exactly `rounds` epochs (production.refit_rounds), without validation rows or
    early stopping; the last epoch's weights are kept. Normalisation statistics come from these rows."""
    import tempfile

    if bars is None or timestamps is None or len(timestamps) != len(bars):
        raise ValueError(f"model kind {kind!r} reads a window of bars: pass the bar table and its timestamps")
    names = [str(c) for c in X.columns]
    table = pd.concat(
        [pd.DataFrame({"timestamp": np.asarray(timestamps)}), bars[names].reset_index(drop=True)], axis=1
    )
    cfg = TorchModelConfig.from_config(model_cfg, seed=int(seed), num_threads=int(threads))
    rows = {"train": X.index.to_numpy(np.int64), "validation": np.zeros(0, dtype=np.int64)}
    labels = {"train": np.asarray(y), "validation": np.zeros(0, dtype=np.int64)}
    with tempfile.TemporaryDirectory(prefix="swingflow-torch-") as tmp:
        matrix = write_feature_matrix(table, Path(tmp) / "X.npy", names)
        trained = train_torch_model(matrix, rows, labels, cfg, fixed_epochs=int(rounds))
    return TorchHead(kind, trained, bars[names].to_numpy(np.float32), matrix.seg_pos)


def rows_predictor(data: bytes, features: Sequence[str]):
    """(module, predict(X (n, F) float32, timestamps=None) -> (n, 3) probabilities) from model.pt bytes
    already verified by the caller (the registry's model-kind dispatch). Rows are consecutive bars;
    `timestamps` (one per row) end windows at gaps, without them every row counts as following the previous
    one. Refuses a model whose feature list differs from `features` (features.json)."""
    module = load_scripted(data)
    if list(module.feature_names) != list(features):
        raise ValueError("model.pt and features.json disagree on the feature list (names or order)")

    def predict(X: np.ndarray, timestamps=None) -> np.ndarray:
        seg = (
            np.arange(len(X), dtype=np.int64)
            if timestamps is None
            else segment_position(pd.Series(timestamps).reset_index(drop=True)).astype(np.int64)
        )
        with torch.no_grad():
            proba = module.predict_proba_rows(
                torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), torch.from_numpy(seg)
            )
        return proba.numpy()

    return module, predict
