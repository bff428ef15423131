"""Ensemble stage: per (symbol, window, side), combine the best heads into one model that is evaluated, gated
and registered like any other.

Two kinds, both over the members' class probabilities (n, 3) of (neither, breakout, reversion):
  average   weighted mean of the members' probabilities (weights default equal; nothing is fitted)
  stacker   multinomial logistic regression on the concatenated members' log-probabilities, fitted on the
            VALIDATION rows only (members were early-stopped on validation but never fitted on it; test stays
            untouched). L2 penalty as scikit-learn's `C` (the loss is mean cross-entropy + ||W||^2 / (2 C n)),
            intercept unpenalised, L-BFGS from zeros: deterministic.

Saved as `ensemble.json` (coefficients and intercepts as JSON floats, repr precision: exact round trip) - no
pickle. The file lists its members (name plus whatever identity the caller gives: vin, model_type, sha256,
path), which the registry entry copies. Validation scores of a stacker are in-sample; `stacker_oof_proba`
gives honest out-of-fold validation probabilities for ranking it against its members AND for choosing its
trading threshold: the folds are data/purged_walk_forward.py's (purged by each row's label_end, embargoed
by the label horizon), so no fold is predicted by a stacker fitted on rows whose labels reach into it.
Walk-forward leaves the first block without an out-of-fold prediction (NaN rows, `oof_rows`); choices read
only the predicted rows.

A registered ensemble folder (training/ensemble_production.py) holds its members' folders under
members/<name>/; `predictor` loads it (the kinds.KINDS loader of the ensemble kinds).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.data.purged_walk_forward import purged_walk_forward

FORMAT = "swingflow-ensemble/1"
ENSEMBLE_FILE = "ensemble.json"
MEMBERS_DIR = "members"
NUM_CLASS = 3
KINDS = ("average", "stacker")
EPS = 1e-6  # probabilities are clipped to [EPS, 1] before the log


@dataclass
class Ensemble:
    kind: str
    members: list[
        dict
    ]  # [{"name": ..., optional "vin", "model_type", "sha256", "path", "score"}], fixed order
    weights: list[float] | None = None  # average
    coef: np.ndarray | None = None  # stacker, (3, 3 * members)
    intercept: np.ndarray | None = None  # stacker, (3,)
    fitted_on: dict = field(default_factory=dict)

    @property
    def member_names(self) -> list[str]:
        return [m["name"] for m in self.members]


def _members(members: Sequence[Mapping | str]) -> list[dict]:
    out = [{"name": m} if isinstance(m, str) else dict(m) for m in members]
    if not out:
        raise ValueError("an ensemble needs at least one member")
    names = [m.get("name") for m in out]
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"member names must be distinct non-empty strings, got {names}")
    return out


def select_members(scores: Mapping[str, float], top_k: int = 3, min_score: float | None = None) -> list[str]:
    """The `top_k` best heads by validation score (higher is better; NaN never chosen; ties by name)."""
    ok = [(s, n) for n, s in scores.items() if not np.isnan(s) and (min_score is None or s >= min_score)]
    ok.sort(key=lambda t: (-t[0], t[1]))
    return [n for _, n in ok[:top_k]]


def _stack(ens_members: Sequence[str], probas: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    missing = [n for n in ens_members if n not in probas]
    if missing:
        raise ValueError(f"probabilities missing for ensemble member(s) {missing}")
    arrs = [np.asarray(probas[n], dtype=np.float64) for n in ens_members]
    n = len(arrs[0])
    for name, a in zip(ens_members, arrs):
        if a.shape != (n, NUM_CLASS):
            raise ValueError(f"member {name!r}: probabilities must be ({n}, {NUM_CLASS}), got {a.shape}")
    return arrs


def _design(arrs: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.log(np.clip(a, EPS, 1.0)) for a in arrs], axis=1)


def fit_average(members: Sequence[Mapping | str], weights: Sequence[float] | None = None) -> Ensemble:
    members = _members(members)
    w = np.ones(len(members)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(members),) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights: one non-negative weight per member, not all zero")
    return Ensemble("average", members, weights=(w / w.sum()).tolist(), fitted_on={"segment": None})


def fit_stacker(
    members: Sequence[Mapping | str],
    val_probas: Mapping[str, np.ndarray],
    y_val,
    C: float = 1.0,
    max_iter: int = 500,
) -> Ensemble:
    """Multinomial logistic regression on validation rows only: `val_probas[name]` (n, 3), `y_val` codes
    0/1/2."""
    members = _members(members)
    names = [m["name"] for m in members]
    X = _design(_stack(names, val_probas))
    y = np.asarray(y_val).astype(np.int64)
    if len(y) != len(X) or len(y) == 0:
        raise ValueError("y_val must have one label per validation row (and at least one row)")
    if y.min() < 0 or y.max() >= NUM_CLASS:
        raise ValueError("labels must be class codes 0, 1, 2")
    coef, intercept, info = _fit_multinomial(X, y, C, max_iter)
    counts = {str(c): int((y == c).sum()) for c in range(NUM_CLASS)}
    return Ensemble(
        "stacker",
        members,
        coef=coef,
        intercept=intercept,
        fitted_on={
            "segment": "validation",
            "rows": len(y),
            "class_counts": counts,
            "C": float(C),
            "input": "log(clip(proba, 1e-6, 1)) per member, members in order",
            **info,
        },
    )


def _fit_multinomial(X: np.ndarray, y: np.ndarray, C: float, max_iter: int):
    from scipy.optimize import minimize

    n, d = X.shape
    Y = np.eye(NUM_CLASS)[y]
    lam = 1.0 / (C * n)

    def f(theta):
        W = theta[: NUM_CLASS * d].reshape(NUM_CLASS, d)
        b = theta[NUM_CLASS * d :]
        Z = X @ W.T + b
        Z -= Z.max(axis=1, keepdims=True)
        logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
        loss = -(Y * logp).sum() / n + 0.5 * lam * (W * W).sum()
        G = (np.exp(logp) - Y) / n
        gW = G.T @ X + lam * W
        return loss, np.concatenate([gW.ravel(), G.sum(axis=0)])

    res = minimize(
        f, np.zeros(NUM_CLASS * (d + 1)), jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
    )
    W = res.x[: NUM_CLASS * d].reshape(NUM_CLASS, d)
    b = res.x[NUM_CLASS * d :]
    return W, b, {"converged": bool(res.success), "iterations": int(res.nit), "loss": float(res.fun)}


def predict_proba(ens: Ensemble, member_probas: Mapping[str, np.ndarray]) -> np.ndarray:
    """(n, 3) float64 probabilities from the members' probabilities on the same rows (keyed by member
    name)."""
    arrs = _stack(ens.member_names, member_probas)
    if ens.kind == "average":
        out = sum(w * a for w, a in zip(ens.weights, arrs))
        return out / out.sum(axis=1, keepdims=True)
    if ens.kind == "stacker":
        Z = _design(arrs) @ ens.coef.T + ens.intercept
        Z -= Z.max(axis=1, keepdims=True)
        E = np.exp(Z)
        return E / E.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown ensemble kind {ens.kind!r}; expected one of {KINDS}")


def stacker_oof_proba(
    members: Sequence[Mapping | str],
    val_probas: Mapping[str, np.ndarray],
    y_val,
    n_folds: int = 5,
    C: float = 1.0,
    *,
    positions,
    label_end,
    embargo: int,
) -> np.ndarray:
    """Purged out-of-fold stacker probabilities on the validation rows (in time order), NaN where a row is
    never predicted (the walk-forward's first, training-only block).

    Folds: `purged_walk_forward(positions, label_end, n_folds, embargo=embargo)` over the validation rows
    (`positions` their bar positions, `label_end` the last bar of each row's label, `embargo` in bars: the
    label horizon). Fold k is predicted by a stacker fitted only on the purged, embargoed rows before it, so
    the probabilities are honest both for ranking the stacker against its members and for choosing its
    trading threshold."""

    names = [m["name"] for m in _members(members)]
    y = np.asarray(y_val).astype(np.int64)
    folds = purged_walk_forward(positions, label_end, n_folds=int(n_folds), embargo=int(embargo))
    out = np.full((len(y), NUM_CLASS), np.nan)
    for tr, va in folds:
        ens = fit_stacker(members, {k: np.asarray(val_probas[k])[tr] for k in names}, y[tr], C)
        out[va] = predict_proba(ens, {k: np.asarray(val_probas[k])[va] for k in names})
    return out


def oof_rows(oof: np.ndarray) -> np.ndarray:
    """Mask of the rows `stacker_oof_proba` predicted (the others are NaN)."""
    return ~np.isnan(np.asarray(oof)).any(axis=1)


def registry_members(ens: Ensemble) -> list[dict]:
    """What the registry entry lists: the members in order, with their identities."""
    return [dict(m) for m in ens.members]


def to_dict(ens: Ensemble) -> dict:
    return {
        "format": FORMAT,
        "kind": ens.kind,
        "members": ens.members,
        "classes": [0, 1, 2],
        "weights": ens.weights,
        "coef": None if ens.coef is None else np.asarray(ens.coef, dtype=np.float64).tolist(),
        "intercept": None if ens.intercept is None else np.asarray(ens.intercept, dtype=np.float64).tolist(),
        "fitted_on": ens.fitted_on,
    }


def save_ensemble(path_dir, ens: Ensemble) -> dict:
    """Write `ensemble.json` (canonical JSON, atomic) into `path_dir`; return the document."""
    doc = to_dict(ens)
    artifacts.write_json(Path(path_dir) / ENSEMBLE_FILE, doc)
    return doc


def load_ensemble(path_dir) -> Ensemble:
    path = Path(path_dir)
    path = path / ENSEMBLE_FILE if path.is_dir() else path
    return from_dict(artifacts.read_json(path), where=str(path))


def from_dict(d: dict, where: str = "ensemble document") -> Ensemble:
    """The Ensemble of a `to_dict` document; errors name `where` (the file)."""
    path = where
    if d.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    if d["kind"] not in KINDS:
        raise ValueError(f"{path}: unknown ensemble kind {d['kind']!r}")
    coef = None if d["coef"] is None else np.asarray(d["coef"], dtype=np.float64).reshape(NUM_CLASS, -1)
    icpt = None if d["intercept"] is None else np.asarray(d["intercept"], dtype=np.float64)
    return Ensemble(d["kind"], _members(d["members"]), d["weights"], coef, icpt, d.get("fitted_on", {}))


def predictor(data: bytes, features: list[str], folder: Path, load_folder):
    """The kinds.KINDS loader of the ensemble kinds: (Ensemble, predict(X, timestamps)) where X has the
    folder's features.json columns (`features`). Every member is loaded with `load_folder` (models/folder.py,
    passed in: it verifies, and it dispatches back to the kind table) from members/<name>/ and picks its own
    columns by name; timestamps pass on to members that cut windows (torch)."""
    ens = from_dict(json.loads(data), where=str(folder / ENSEMBLE_FILE))
    loaded = {m["name"]: load_folder(folder / MEMBERS_DIR / m["name"]) for m in ens.members}
    for m in ens.members:
        if loaded[m["name"]].vin != m.get("vin"):
            raise ValueError(
                f"{folder}: member {m['name']} is {loaded[m['name']].vin}, ensemble.json lists {m.get('vin')}"
            )

    def predict(X: np.ndarray, timestamps=None) -> np.ndarray:
        frame = pd.DataFrame(np.asarray(X, dtype=np.float32), columns=features)
        if timestamps is not None:
            frame.insert(0, "timestamp", pd.Series(timestamps).reset_index(drop=True))
        return predict_proba(ens, {n: lm.predict_proba(frame) for n, lm in loaded.items()})

    return ens, predict
