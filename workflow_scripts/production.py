"""Production training of one best combination and the production folder (docs/REGISTRY.md, the contract).

`fit_head(kind, ...)` is the ONE place that maps a model kind to its trainer. Every kind returns an object with

    predict_proba(X: DataFrame) -> ndarray (rows, 3)   columns 0 neither, 1 breakout, 2 reversion
    save(folder) -> Path                               writes the ONE model file, returns its path
    kind, model_type (config.json's model_type), vin_type (the VIN's TYPE), best_iteration,
    native_params (what the library was given), log (facts for training_log.json: may hold timings)

To add a kind (torch_mlp, torch_transformer): write a `_fit_<kind>` with the signature of `_fit_tree` and add
it to `FITTERS`.

Training (`train_combination`): the tuned stage-4 parameters over the model config's `params`, early stopping on
the chronological validation segment, then predictions for every scored event bar of validation and test.
Evaluation (`evaluate_production`) is stage 1's, unchanged: the threshold is chosen on validation, the test
segment is traded once with the symbol's cost snapshot, the DSR counts every trial behind the model (stage-1
variants of its side + tuning trials of stages 2-4).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from workflow_scripts import artifacts, heads
from workflow_scripts.combination import Combination
from workflow_scripts.stage1 import macro_average_precision, prediction_frame
from workflow_scripts.tuning import resolve_params
from workflow_scripts.variant_evaluation import choose_on_validation, evaluate_on_test
from workflow_scripts.vin import encode_vin, vin_fields_for_lgbm

VIN_TYPES = {"lightgbm": "LGBM", "xgboost": "XGB"}
ENCODER_FILE = "encoder.json"


@dataclass
class TreeHead:
    """A LightGBM or XGBoost head (heads.Head) behind the production interface."""

    head: heads.Head
    log: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.head.kind

    @property
    def model_type(self) -> str:
        return self.head.kind

    @property
    def vin_type(self) -> str:
        return VIN_TYPES[self.head.kind]

    @property
    def best_iteration(self) -> int:
        return self.head.best_iteration

    @property
    def native_params(self) -> dict:
        return self.head.params

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return heads.predict_proba(self.head, X)

    def save(self, folder) -> Path:
        path = Path(folder) / heads.MODEL_FILES[self.head.kind]
        artifacts.write_bytes(path, heads.model_bytes(self.head))
        return path


def _fit_tree(kind, X_train, y_train, X_val, y_val, params, seed, threads, model_cfg) -> TreeHead:
    head = heads.train_head(
        kind, X_train, y_train, X_val, y_val, params, seed,
        num_boost_round=int(model_cfg["num_boost_round"]),
        early_stopping_rounds=int(model_cfg["early_stopping_rounds"]),
        num_threads=int(threads), xgboost_base=model_cfg.get("xgboost_base"),
    )
    log = {"fit_seconds": round(head.fit_seconds, 3), "best_iteration": head.best_iteration,
           "num_boost_round": head.num_boost_round, "early_stopping_rounds": head.early_stopping_rounds,
           "library_version": heads._library_version(kind)}
    return TreeHead(head, log)


FITTERS: dict[str, Callable[..., Any]] = {"lightgbm": _fit_tree, "xgboost": _fit_tree}


def fit_head(kind: str, X_train: pd.DataFrame, y_train, X_val: pd.DataFrame, y_val, *, params: dict, seed: int,
             threads: int, model_cfg: dict):
    """Train a head of `kind` (config/model `kind`); the interface is in the module docstring."""
    if kind not in FITTERS:
        raise ValueError(f"unknown model kind {kind!r}; known: {sorted(FITTERS)} (config/model)")
    for name, X in (("X_train", X_train), ("X_val", X_val)):
        if not all(X.dtypes == np.float32):
            raise ValueError(f"{name} must be float32 columns")
    return FITTERS[kind](kind, X_train, y_train, X_val, y_val, params, seed, threads, model_cfg)


def production_params(model_cfg: dict, tuned: dict, n_train_rows: int) -> dict:
    """LightGBM-named parameters of the production fit: the model config's `params`, the tuned ones on top,
    min_child_samples_frac turned into rows of this training segment."""
    return resolve_params(dict(model_cfg.get("params") or {}), dict(tuned), n_train_rows)


@dataclass
class Trained:
    model: Any  # what fit_head returned
    params: dict  # LightGBM-named parameters it was trained with
    predictions: pd.DataFrame  # pos, p_neither, p_breakout, p_reversion for every scored bar
    validation_ap: float
    test_ap: float


def train_combination(comb: Combination, tuned: dict, model_cfg: dict, threads: int = 1) -> Trained:
    X_tr, y_tr = comb.segment("train")
    X_va, y_va = comb.segment("validation")
    params = production_params(model_cfg, tuned, len(y_tr))
    model = fit_head(model_cfg["kind"], X_tr, y_tr, X_va, y_va, params=params, seed=int(model_cfg["seed"]),
                     threads=threads, model_cfg=model_cfg)
    scored = comb.rows["scored"]
    proba = model.predict_proba(comb.X.iloc[scored])
    where = {seg: np.searchsorted(scored, comb.rows[seg]) for seg in ("validation", "test")}
    y_te = comb.labels[comb.rows["test"]].astype(np.int64)
    return Trained(model, params, prediction_frame(scored, proba),
                   macro_average_precision(y_va, proba[where["validation"]]),
                   macro_average_precision(y_te, proba[where["test"]]))


def dsr_trials(choice: dict, tuning_results: dict[str, dict]) -> dict:
    """Every trial behind the model: the stage-1 variants of its side (trained ones) and the finished trials of
    the tuning stages. Per-trade test Sharpes exist for the stage-1 variants only (tuning trials never touch the
    test segment), so they give the variance of the trials' Sharpes."""
    trained = [v for v in choice["variants_ranked"] if v.get("status") == "trained"]
    counts = {"stage1_variants": len(trained)}
    counts |= {stage: int(r["finished_trials"]) for stage, r in sorted(tuning_results.items())}
    return {"n_trials": int(sum(counts.values())), "by_stage": counts,
            "trial_sharpes": [v.get("sharpe_per_trade") for v in trained if v.get("sharpe_per_trade") is not None]}


def evaluate_production(comb: Combination, trained: Trained, close: np.ndarray, costs: dict, cfg: dict,
                        trials: dict) -> dict:
    """Stage 1's evaluation of the production model; cfg holds targets, evaluation, gates and grades."""
    first = choose_on_validation(comb.targets, close, comb.split, comb.window, cfg["targets"], comb.target,
                                 trained.predictions, costs, cfg)
    sharpes = list(trials["trial_sharpes"]) + [first["sharpe"]]
    return evaluate_on_test(first, comb.split, cfg, max(1, trials["n_trials"]), sharpes)


def production_vin(symbol: str, window: int, target: str, model, params: dict, grade: str, data_end: str,
                   model_sha256: str, data_version: str, encoder_version: str | None) -> str:
    """The VIN of a production model; the date is the last bar of the data, so a rerun gives the same code."""
    from workflow_scripts.config import parse_target_id

    date = pd.Timestamp(data_end).strftime("%Y%m%d")
    identity = {"symbol": symbol, "target": target, "window": window, "kind": model.kind, "params": params,
                "date": date, "model_sha256": model_sha256, "data_version": data_version,
                "encoder_version": encoder_version}
    fields = vin_fields_for_lgbm(params, grade=grade, target=parse_target_id(target), window=window, date=date,
                                 identity=identity, best_iteration=model.best_iteration, model_type=model.vin_type)
    return encode_vin(fields)


def score_of(evaluation: dict) -> float | None:
    """The registry's ranking score: per-trade Sharpe after costs on the test segment (None without trades)."""
    value = evaluation["after_costs"].get("sharpe_per_trade")
    return None if value is None or not math.isfinite(float(value)) else float(value)


def write_folder(folder, model, documents: dict[str, Any], encoder_path=None) -> Path:
    """Write a production folder: the model file, the JSON documents, the encoder copy, then sha256.txt LAST."""
    from workflow_scripts.registry import write_sha256

    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    model.save(folder)
    for name, doc in documents.items():
        artifacts.write_json(folder / name, doc)
    if encoder_path is not None:
        artifacts.write_bytes(folder / ENCODER_FILE, Path(encoder_path).read_bytes())
    return write_sha256(folder)


def summary_row(config: dict, metrics: dict) -> dict:
    after = metrics["evaluation"]["after_costs"]
    return {
        "symbol": config["symbol"], "window": config["window"], "side": config["side"],
        "target": config["target"], "model_type": config["model_type"],
        "params": " ".join(f"{k}={v}" for k, v in sorted(config["tuned_params"].items())),
        "validation_average_precision": metrics["validation_average_precision"],
        "test_average_precision": metrics["test_average_precision"],
        "n_trades": after["n_trades"], "net_total_return": after["total_return"],
        "sharpe_per_trade": after["sharpe_per_trade"], "dsr": after["dsr"], "max_drawdown": after["max_drawdown"],
        "dsr_trials": metrics["dsr_trials"]["n_trials"],
        "gate_passed": metrics["gate"]["passed"], "grade": metrics["grade"]["grade"], "vin": metrics["vin"],
    }


def summary_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).sort_values(["symbol", "window", "side"]).reset_index(drop=True)
