"""Stage 1 of the hierarchical line: a CNN-LSTM feature extractor per coin, whose per-bar embeddings the
agents observe.

Network: RAW feature window (B, T, F) of bars t-T+1 .. t -> standardise with the TRAIN segment's mean and std
(baked in as buffers; non-finite values -> 0, the training mean) -> Conv1d over time (valid padding) -> ReLU
-> LSTM -> last hidden state -> Linear -> tanh = embedding (B, E); a linear head on the embedding gives the
training logit. The embedding at bar t reads only the window ending at t, so it is causal by construction;
window positions before the first bar or across a gap are NaN (models/torch_models.py `gather_windows`) and so
read as the training mean.

Objective, chosen: the sign of the next-horizon return, y_t = 1 if close_{t+h} > close_t else 0 (binary
cross-entropy), on every bar of the train segment whose horizon ends inside it, early-stopped on the
validation segment's loss. Why not the swing labels: they exist only on event bars (a few percent of bars),
while the agent reads an embedding at every bar, so a dense target gives the extractor far more signal about
the state the agent acts in; and the swing classifiers' own probabilities join the hybrid agent (stage 3) as
separate inputs, so training the extractor on the same labels would feed the agent one signal twice.
Next-horizon return sign is also what the agent's reward is made of, without committing the extractor to a
cost model or a trading rule.

Export: TorchScript scripted and saved in a fresh interpreter with PYTHONHASHSEED=0 (as models/torch_models.py
does for the swing heads, for the same reason: the same weights give the same bytes in any process), loaded
with `load_scripted`; `forward` returns the embedding, `logit` the head's output. Device: `select_device`
(cuda, then mps, then cpu); a GPU failure retries on the CPU."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from workflow_scripts.agents.environment import standardise
from workflow_scripts.agents.export import fresh_script_bytes
from workflow_scripts.models.torch_models import gather_windows, load_scripted, select_device

log = logging.getLogger(__name__)
PARITY_ATOL = 1e-5


@dataclass(frozen=True)
class CnnLstmConfig:
    """Config group `agents.cnn_lstm` (config/agents/ppo.yaml, the one home of the values); `horizon` is the
    number of bars ahead of the return whose sign is learned."""

    seq_len: int
    conv_channels: int
    kernel_size: int
    hidden: int
    embedding_dim: int
    horizon: int
    learning_rate: float
    batch_size: int
    max_epochs: int
    patience: int
    seed: int
    device: str
    threads: int

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any] | None) -> CnnLstmConfig:
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - set(cls.__dataclass_fields__))
        missing = sorted(set(cls.__dataclass_fields__) - set(cfg))
        if unknown or missing:
            raise ValueError(
                f"cnn_lstm: unknown key(s) {unknown}, missing key(s) {missing}; "
                f"expected: {sorted(cls.__dataclass_fields__)}"
            )
        out = cls(**cfg)
        if out.seq_len < out.kernel_size:
            raise ValueError(f"cnn_lstm: seq_len {out.seq_len} must be >= kernel_size {out.kernel_size}")
        return out

    def to_dict(self) -> dict:
        return asdict(self)


class CnnLstmNet(nn.Module):
    """RAW windows (B, T, F) -> embeddings (B, E); `logit` -> (B,). Normalisation baked in."""

    def __init__(
        self,
        n_features: int,
        seq_len: int,
        conv_channels: int,
        kernel_size: int,
        hidden: int,
        embedding_dim: int,
    ):
        super().__init__()
        self.n_features, self.seq_len = int(n_features), int(seq_len)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.conv = nn.Conv1d(n_features, conv_channels, kernel_size)
        self.lstm = nn.LSTM(conv_channels, hidden, batch_first=True)
        self.project = nn.Linear(hidden, embedding_dim)
        self.head = nn.Linear(embedding_dim, 1)
        self._kwargs = {
            "n_features": int(n_features),
            "seq_len": int(seq_len),
            "conv_channels": int(conv_channels),
            "kernel_size": int(kernel_size),
            "hidden": int(hidden),
            "embedding_dim": int(embedding_dim),
        }

    def recipe(self) -> dict:
        """What rebuilds this module apart from its state_dict (JSON-able)."""
        return dict(self._kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.size(1) != self.seq_len or x.size(2) != self.n_features:
            raise RuntimeError(
                "CnnLstmNet expects raw windows (batch, "
                + str(self.seq_len)
                + ", "
                + str(self.n_features)
                + ")"
            )
        z = (x.to(self.mean.dtype) - self.mean) / self.std
        z = torch.where(torch.isfinite(z), z, torch.zeros_like(z))
        h = torch.relu(self.conv(z.transpose(1, 2))).transpose(1, 2)
        out, _ = self.lstm(h)
        return torch.tanh(self.project(out[:, -1]))

    @torch.jit.export
    def logit(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward(x)).squeeze(1)


def build_net(cfg: CnnLstmConfig, n_features: int) -> CnnLstmNet:
    return CnnLstmNet(
        n_features, cfg.seq_len, cfg.conv_channels, cfg.kernel_size, cfg.hidden, cfg.embedding_dim
    )


def rebuild(recipe: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> CnnLstmNet:
    net = CnnLstmNet(**recipe)
    net.load_state_dict(state, strict=True)
    return net.eval()


# -- data ----------------------------------------------------------------------------------------------------
def direction_labels(close: np.ndarray, horizon: int) -> np.ndarray:
    """1.0 where close_{t+h} > close_t, 0.0 where not, NaN for the last h bars (no label yet)."""
    close = np.asarray(close, dtype=float)
    y = np.full(len(close), np.nan)
    y[:-horizon] = (close[horizon:] > close[:-horizon]).astype(float)
    return y


def labelled_rows(segment: tuple[int, int], horizon: int) -> np.ndarray:
    """Bars of [lo, hi) whose label ends inside the segment (t + h < hi): no label crosses into the next
    one."""
    lo, hi = segment
    return np.arange(lo, max(lo, hi - horizon), dtype=np.int64)


# -- training ------------------------------------------------------------------------------------------------
@dataclass
class TrainedExtractor:
    net: CnnLstmNet  # CPU, float32, eval, best epoch's weights
    config: CnnLstmConfig
    history: dict


def train_extractor(
    features: np.ndarray,
    close: np.ndarray,
    seg_pos: np.ndarray,
    train: tuple[int, int],
    validation: tuple[int, int],
    cfg: CnnLstmConfig,
) -> TrainedExtractor:
    """Fit on the train segment's bars, early-stop on the validation segment's mean BCE; GPU failure ->
    CPU."""
    device = select_device(cfg.device)
    try:
        return _train_on(device, features, close, seg_pos, train, validation, cfg)
    except Exception as exc:
        if device.type == "cpu":
            raise
        log.warning("cnn_lstm training on %s failed (%s); retrying on cpu", device, exc)
        out = _train_on(torch.device("cpu"), features, close, seg_pos, train, validation, cfg)
        out.history["device_fallback"] = {"from": str(device), "error": f"{type(exc).__name__}: {exc}"[:500]}
        return out


def _train_on(device, features, close, seg_pos, train, validation, cfg) -> TrainedExtractor:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(int(cfg.threads))
    x = np.asarray(features, dtype=np.float32)
    y = direction_labels(close, cfg.horizon)
    rows = {"train": labelled_rows(train, cfg.horizon), "validation": labelled_rows(validation, cfg.horizon)}
    if len(rows["train"]) == 0 or len(rows["validation"]) == 0:
        raise ValueError("cnn_lstm: the train and validation segments need bars with a complete label")
    _, stats = standardise(x, train)  # train segment only
    net = build_net(cfg, x.shape[1])
    net.mean.copy_(torch.tensor(stats["mean"], dtype=torch.float32))
    net.std.copy_(torch.tensor(stats["std"], dtype=torch.float32))
    net.to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
    loss_fn = nn.BCEWithLogitsLoss()
    generator = np.random.default_rng(cfg.seed)
    best_loss, best_state, best_epoch, bad, losses = float("inf"), None, -1, 0, []
    for epoch in range(cfg.max_epochs):
        net.train()
        order = generator.permutation(rows["train"])
        for start in range(0, len(order), cfg.batch_size):
            batch = np.sort(order[start : start + cfg.batch_size])
            xb, yb = _batch(x, y, seg_pos, batch, cfg.seq_len, device)
            optimiser.zero_grad()
            loss = loss_fn(net.logit(xb), yb)
            loss.backward()
            optimiser.step()
        val_loss = _mean_loss(net, x, y, seg_pos, rows["validation"], cfg, device, loss_fn)
        losses.append(val_loss)
        if val_loss < best_loss - 1e-6:
            best_loss, best_epoch, bad = val_loss, epoch, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in net.state_dict().items()})
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    net = net.cpu()
    net.load_state_dict(best_state)
    history = {
        "validation_loss": losses,
        "best_epoch": best_epoch,
        "best_validation_loss": best_loss,
        "device": str(device),
        "n_rows": {k: len(v) for k, v in rows.items()},
        "train_up_share": float(np.mean(y[rows["train"]])),
    }
    return TrainedExtractor(net.eval(), cfg, history)


def _batch(x, y, seg_pos, rows, seq_len, device):
    windows = torch.from_numpy(gather_windows(x, seg_pos, rows, seq_len)).to(device)
    return windows, torch.from_numpy(y[rows].astype(np.float32)).to(device)


def _mean_loss(net, x, y, seg_pos, rows, cfg, device, loss_fn) -> float:
    net.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(rows), 4096):
            batch = rows[start : start + 4096]
            xb, yb = _batch(x, y, seg_pos, batch, cfg.seq_len, device)
            total += float(loss_fn(net.logit(xb), yb)) * len(batch)
    return total / len(rows)


# -- embeddings ----------------------------------------------------------------------------------------------
def embed_bars(net, features: np.ndarray, seg_pos: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Embeddings (n, E) float32 of every bar, each from the window ending at that bar (eager or scripted)."""
    x = np.asarray(features, dtype=np.float32)
    seq_len = int(net.seq_len)
    out = []
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            rows = np.arange(start, min(len(x), start + chunk))
            out.append(net(torch.from_numpy(gather_windows(x, seg_pos, rows, seq_len))).numpy())
    return np.concatenate(out).astype(np.float32)


# -- export --------------------------------------------------------------------------------------------------
def scripted_bytes(net: CnnLstmNet) -> bytes:
    """TorchScript bytes of `net`: the same weights give the same bytes in any process (fresh interpreter)."""
    return fresh_script_bytes(net, f"{__name__}:rebuild", "cnn_lstm")


def parity(net: CnnLstmNet, data: bytes, features: np.ndarray, seg_pos: np.ndarray) -> float:
    """Max |eager - scripted| embedding over every bar of `features`; raises above PARITY_ATOL."""
    eager = embed_bars(net, features, seg_pos)
    scripted = embed_bars(load_scripted(data), features, seg_pos)
    diff = float(np.max(np.abs(eager - scripted))) if len(eager) else 0.0
    if diff > PARITY_ATOL:
        raise AssertionError(f"cnn_lstm TorchScript parity: max |diff| {diff} > {PARITY_ATOL}")
    return diff
