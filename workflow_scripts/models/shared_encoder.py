"""Optional shared encoder (`encoder=pca`): one PCA fitted on the pooled TRAINING rows of every coin.

Fit: the encoder's columns (the coins' own `{family}__{name}` features, common to all coins) are taken from
each coin's training segment only (`training_rows`); validation and test rows never reach the fit. All coins
are cut at ONE common timestamp (`training_cut`: the earliest training-segment end over coins and windows),
not each by its own bar share: with unequal listing dates a late coin's training segment ends later in
calendar time, and its rows after the cut would lie in an earlier coin's validation or test period. Each
column is standardised with the training mean and standard deviation (NaN ignored); a constant or all-NaN
column gets scale 1 (and mean 0 if all-NaN). NaN (and +-inf) is filled with the training mean, i.e. 0 after
standardising, before projecting, both when fitting and when transforming. Components are the top eigenvectors
of the standardised training covariance, sign-fixed so each component's largest-magnitude loading is positive
(deterministic).

Saved as one canonical JSON file (columns, mean, scale, components, explained variance ratio; floats written
with repr precision so they round-trip exactly) - no pickle. The encoder version is the sha256 of that file;
every head that uses the encoder records it (heads.Head.encoder_sha256).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts import artifacts

FORMAT = "swingflow-pca-encoder/1"


@dataclass(frozen=True)
class PcaEncoder:
    columns: list[str]
    mean: np.ndarray  # (p,)
    scale: np.ndarray  # (p,)
    components: np.ndarray  # (k, p), rows orthonormal
    explained_variance_ratio: np.ndarray  # (k,)
    n_train_rows: int
    prefix: str = "shared__pca_"

    @property
    def output_columns(self) -> list[str]:
        return [f"{self.prefix}{i:03d}" for i in range(len(self.components))]


def training_range(splits: list[dict]) -> tuple[int, int]:
    """Bar range [lo, hi) inside the training segment of every given split (e.g. all windows of one coin).

    Splits differ per window (the purge follows the horizon), so the encoder takes the intersection: no row it
    sees is validation or test for any window.
    """
    bounds = [_train_bounds(s) for s in splits]
    lo = max(b[0] for b in bounds)
    hi = min(b[1] for b in bounds)
    if hi <= lo:
        raise ValueError("the training segments of the given splits do not overlap")
    return lo, hi


def training_cut(features: Mapping[str, pd.DataFrame], ranges: Mapping[str, tuple[int, int]]) -> pd.Timestamp:
    """The common training cut: the earliest timestamp of a last training bar over the coins (`ranges[s]`
    = [lo, hi) bar positions of coin s, already the intersection over its windows, `training_range`)."""
    ends = []
    for s in sorted(features):
        if "timestamp" not in features[s].columns:
            raise ValueError(f"{s}: the feature table has no timestamp column: cannot cut at a common time")
        lo, hi = ranges[s]
        if hi <= lo:
            raise ValueError(f"{s}: empty training range [{lo}, {hi})")
        ends.append(pd.Timestamp(features[s]["timestamp"].iloc[hi - 1]))
    return min(ends)


def training_rows(
    features: Mapping[str, pd.DataFrame],
    ranges: Mapping[str, tuple[int, int]],
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Pool bar positions [lo, hi) of each coin's feature table (symbols in sorted order) on shared columns,
    every coin cut at the common `training_cut` (no row after the earliest coin's training end).

    `columns` default: the non-timestamp columns every coin has, in the first coin's order. Feature rows
    are bar positions (docs/CONTRACTS.md: one row per ingested bar, same order).
    """
    symbols = sorted(features)
    if not symbols:
        raise ValueError("no feature tables to pool")
    if columns is None:
        common = set.intersection(*(set(features[s].columns) for s in symbols)) - {"timestamp"}
        columns = [c for c in features[symbols[0]].columns if c in common]
    cut = training_cut(features, ranges)
    parts = []
    for s in symbols:
        lo, hi = ranges[s]
        rows = features[s].iloc[lo:hi]
        parts.append(rows.loc[(rows["timestamp"] <= cut).to_numpy(), columns])
    return pd.concat(parts, ignore_index=True)


def fit_pca_encoder(
    X_train: pd.DataFrame, n_components: int = 50, prefix: str = "shared__pca_"
) -> PcaEncoder:
    """Fit standardisation + PCA on training rows only (see module docstring for NaN handling)."""
    columns = [str(c) for c in X_train.columns if c != "timestamp"]
    X = X_train[columns].to_numpy(dtype=np.float64)
    if len(X) < 2:
        raise ValueError("the encoder needs at least 2 training rows")
    with np.errstate(all="ignore"):
        mean = np.nanmean(X, axis=0)
        std = np.nanstd(X, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    scale = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    Z = _standardise(X, mean, scale)
    cov = (Z.T @ Z) / (len(Z) - 1)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval, kind="stable")[::-1]
    k = int(min(n_components, len(columns), len(Z)))
    eigval = np.clip(eigval[order][:k], 0.0, None)
    comps = eigvec[:, order][:, :k].T.copy()
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
    comps *= np.where(signs == 0, 1.0, signs)[:, None]
    total = float(np.trace(cov))
    ratio = eigval / total if total > 0 else np.zeros(k)
    return PcaEncoder(columns, mean, scale, comps, ratio, len(Z), prefix)


def transform(encoder: PcaEncoder, X: pd.DataFrame) -> pd.DataFrame:
    """Encoder outputs (float32, columns `shared__pca_000`...) for the rows of `X`, same index."""
    missing = [c for c in encoder.columns if c not in X.columns]
    if missing:
        raise ValueError(f"{len(missing)} encoder columns missing, e.g. {missing[:3]}")
    Z = _standardise(X[encoder.columns].to_numpy(dtype=np.float64), encoder.mean, encoder.scale)
    out = Z @ encoder.components.T
    return pd.DataFrame(out.astype(np.float32), index=X.index, columns=encoder.output_columns)


def append_encoded(features: pd.DataFrame, encoder: PcaEncoder) -> pd.DataFrame:
    """The coin's feature table with the encoder outputs appended as extra columns."""
    return pd.concat([features, transform(encoder, features)], axis=1)


def save_encoder(path, encoder: PcaEncoder) -> str:
    """Write the encoder as canonical JSON (atomic); return its version (sha256 of the file)."""
    artifacts.write_json(
        path,
        {
            "format": FORMAT,
            "columns": encoder.columns,
            "mean": encoder.mean.tolist(),
            "scale": encoder.scale.tolist(),
            "components": encoder.components.tolist(),
            "explained_variance_ratio": encoder.explained_variance_ratio.tolist(),
            "n_train_rows": encoder.n_train_rows,
            "prefix": encoder.prefix,
        },
    )
    return encoder_version(path)


def load_encoder(path, expected_sha256: str | None = None) -> PcaEncoder:
    """Read an encoder written by `save_encoder`. With `expected_sha256` (the version a head recorded,
    heads.Head.encoder_sha256) a file whose sha256 differs is refused (ValueError naming it) before it is
    read."""
    d = artifacts.read_document(path, FORMAT, expected_sha256)
    p = len(d["columns"])
    return PcaEncoder(
        columns=list(d["columns"]),
        mean=np.asarray(d["mean"], dtype=np.float64),
        scale=np.asarray(d["scale"], dtype=np.float64),
        components=np.asarray(d["components"], dtype=np.float64).reshape(-1, p),
        explained_variance_ratio=np.asarray(d["explained_variance_ratio"], dtype=np.float64),
        n_train_rows=int(d["n_train_rows"]),
        prefix=d["prefix"],
    )


def encoder_version(path) -> str:
    return artifacts.sha256_file(Path(path))


def fit_shared_encoder(X: pd.DataFrame, spec: dict):
    """The encoder of config/encoder `kind` fitted on the pooled training rows X."""
    if spec["kind"] == "pca":
        return fit_pca_encoder(
            X, n_components=int(spec["n_components"]), prefix=spec.get("prefix") or "shared__pca_"
        )
    if spec["kind"] == "autoencoder":
        from workflow_scripts.models import autoencoder_encoder  # heavy: torch

        return autoencoder_encoder.fit_autoencoder_encoder(
            X, autoencoder_encoder.AutoencoderConfig.from_config(spec)
        )
    raise ValueError(f"encoder.kind={spec['kind']!r}: known kinds: pca, autoencoder")


def save_shared_encoder(path, encoder) -> str:
    """Write either encoder kind as its one JSON file (atomic); return the version (sha256 of the file)."""
    if isinstance(encoder, PcaEncoder):
        return save_encoder(path, encoder)
    from workflow_scripts.models import autoencoder_encoder  # heavy: torch

    return autoencoder_encoder.save_encoder(path, encoder)


def load_shared_encoder(path, expected_sha256: str | None = None):
    """Any shared encoder file (results/encoder/{kind}.json): a PcaEncoder, or an autoencoder_encoder.
    AutoencoderEncoder (torch imported only then), chosen by the file's `format`; with `expected_sha256` a
    file of another version is refused."""
    fmt = artifacts.read_json(path).get("format")
    if fmt == FORMAT:
        return load_encoder(path, expected_sha256)
    from workflow_scripts.models import autoencoder_encoder  # heavy: torch

    if fmt == autoencoder_encoder.FORMAT:
        return autoencoder_encoder.load_encoder(path, expected_sha256)
    raise ValueError(
        f"{path}: unknown shared encoder format {fmt!r}; expected {FORMAT!r} or "
        f"{autoencoder_encoder.FORMAT!r}"
    )


def encode(encoder, X: pd.DataFrame) -> pd.DataFrame:
    """The outputs of either encoder kind for the rows of `X` (float32, same index)."""
    if isinstance(encoder, PcaEncoder):
        return transform(encoder, X)
    from workflow_scripts.models import autoencoder_encoder  # heavy: torch

    return autoencoder_encoder.transform(encoder, X)


def _train_bounds(split: dict) -> tuple[int, int]:
    seg = split["train"]  # {"lo", "hi", ...} as workflow_scripts.data.splits writes it, or [lo, hi)
    return (int(seg["lo"]), int(seg["hi"])) if isinstance(seg, dict) else (int(seg[0]), int(seg[1]))


def _standardise(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    Z = (X - mean) / scale
    Z[~np.isfinite(Z)] = 0.0  # NaN (and inf) -> training mean
    return Z
