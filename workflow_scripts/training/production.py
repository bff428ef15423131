"""Production training of one best combination and the production folder (docs/REGISTRY.md, the contract).

`fit_head(kind, ...)` trains a head with the `fit` of the kind's entry in models/kinds.py (the one model-kind
table); every kind returns a kinds.FittedHead: predict_proba(X) -> (rows, 3), save(folder) -> the ONE model
file, kind, model_type (config.json's model_type), vin_type (the VIN's TYPE), best_iteration, native_params
(what the library was given), log (facts for training_log.json). A new kind is one entry in kinds.KINDS.

Training (`train_combination`): the tuned stage-4 parameters over the model config's `params`, early stopping on
the chronological validation segment, then predictions for every scored event bar of validation and test.
Evaluation (`evaluate_production`) is stage 1's, unchanged: the threshold is chosen on validation, the test
segment is traded once with the symbol's cost snapshot, the DSR counts every trial behind the model (stage-1
variants of its side + tuning trials of stages 2-4).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.evaluation.variant_evaluation import choose_on_validation, evaluate_on_test
from workflow_scripts.evaluation.vin import encode_vin, vin_fields_for_lgbm
from workflow_scripts.models import kinds
from workflow_scripts.models.folder import write_sha256
from workflow_scripts.targets.grammar import parse_target_id
from workflow_scripts.training.combination import Combination
from workflow_scripts.training.stage1 import macro_average_precision, prediction_frame
from workflow_scripts.training.tuning import resolve_params

ENCODER_FILE = "encoder.json"


def fit_head(
    kind: str,
    X_train: pd.DataFrame,
    y_train,
    X_val: pd.DataFrame,
    y_val,
    *,
    params: dict,
    seed: int,
    threads: int,
    model_cfg: dict,
    bars: pd.DataFrame | None = None,
    timestamps=None,
) -> kinds.FittedHead:
    """Train a head of `kind` (config/model `kind`); the interface is in the module docstring. `bars` (the whole
    bar-ordered feature table, X_* index = bar positions) and `timestamps` (its bars' times) feed the windowed
    torch kinds; tree kinds ignore them."""
    spec = kinds.KINDS.get(kind)
    if spec is None or spec.fit is None:
        raise ValueError(f"unknown model kind {kind!r}; known: {sorted(kinds.TRAINABLE)} (config/model)")
    for name, X in (("X_train", X_train), ("X_val", X_val)):
        if not all(X.dtypes == np.float32):
            raise ValueError(f"{name} must be float32 columns")
    head = spec.fit(
        spec,
        X_train,
        y_train,
        X_val,
        y_val,
        params,
        seed,
        threads,
        model_cfg,
        bars=bars,
        timestamps=timestamps,
    )
    said, table = (head.kind, head.model_type, head.vin_type), (spec.name, spec.model_type, spec.vin_type)
    if said != table:
        raise ValueError(
            f"the {kind} head says (kind, model_type, vin_type) {said}; models/kinds.py says {table}"
        )
    return head


def production_params(model_cfg: dict, tuned: dict, n_train_rows: int) -> dict:
    """LightGBM-named parameters of the production fit: the model config's `params`, the tuned ones on top,
    min_child_samples_frac turned into rows of this training segment."""
    return resolve_params(dict(model_cfg.get("params") or {}), dict(tuned), n_train_rows)


def tuned_params(comb: Combination, tuning: dict[str, dict]) -> tuple[dict, str]:
    """The best tuned parameters and the stage they come from: stage 4's best, or stage 3's when its CV score is
    higher (both are scored on the same purged walk-forward folds, so their scores compare)."""
    for stage in ("stage3", "stage4"):
        r = tuning[stage]
        if (r["symbol"], int(r["window"]), r["side"]) != (comb.symbol, comb.window, comb.side):
            raise ValueError(
                f"{stage} result is for {r['symbol']} w{r['window']} {r['side']}, "
                f"not {comb.symbol} w{comb.window} {comb.side}"
            )
    scored = [
        (r["best_value"], stage)
        for stage, r in ((s, tuning[s]) for s in ("stage4", "stage3"))
        if r.get("best_params") and r.get("best_value") is not None
    ]
    if not scored:
        raise ValueError(
            f"stages 3 and 4 of {comb.symbol} w{comb.window} {comb.side} have no best trial "
            "(every trial failed or was pruned)"
        )
    stage = max(scored, key=lambda x: x[0])[1]  # stage 4 first: it wins ties
    return tuning[stage]["best_params"], stage


@dataclass
class Trained:
    model: kinds.FittedHead  # what fit_head returned
    params: dict  # LightGBM-named parameters it was trained with
    predictions: pd.DataFrame  # pos, p_neither, p_breakout, p_reversion for every scored bar
    validation_ap: float
    test_ap: float


def train_combination(comb: Combination, tuned: dict, model_cfg: dict, threads: int = 1) -> Trained:
    X_tr, y_tr = comb.segment("train")
    X_va, y_va = comb.segment("validation")
    params = production_params(model_cfg, tuned, len(y_tr))
    model = fit_head(
        model_cfg["kind"],
        X_tr,
        y_tr,
        X_va,
        y_va,
        params=params,
        seed=int(model_cfg["seed"]),
        threads=threads,
        model_cfg=model_cfg,
        bars=comb.X,
        timestamps=comb.targets["timestamp"],
    )
    scored = comb.rows["scored"]
    proba = model.predict_proba(comb.X.iloc[scored])
    where = {seg: np.searchsorted(scored, comb.rows[seg]) for seg in ("validation", "test")}
    y_te = comb.labels[comb.rows["test"]].astype(np.int64)
    return Trained(
        model,
        params,
        prediction_frame(scored, proba),
        macro_average_precision(y_va, proba[where["validation"]]),
        macro_average_precision(y_te, proba[where["test"]]),
    )


def dsr_trials(choice: dict, tuning_results: dict[str, dict]) -> dict:
    """Every trial behind the model: the stage-1 variants of its side (trained ones) and the finished trials of
    the tuning stages. Per-trade test Sharpes exist for the stage-1 variants only (tuning trials never touch the
    test segment), so they give the variance of the trials' Sharpes."""
    trained = [v for v in choice["variants_ranked"] if v.get("status") == "trained"]
    counts = {"stage1_variants": len(trained)}
    counts |= {stage: int(r["finished_trials"]) for stage, r in sorted(tuning_results.items())}
    return {
        "n_trials": int(sum(counts.values())),
        "by_stage": counts,
        "trial_sharpes": [
            v.get("sharpe_per_trade") for v in trained if v.get("sharpe_per_trade") is not None
        ],
    }


def evaluate_production(
    comb: Combination, trained: Trained, close: np.ndarray, costs: dict, cfg: dict, trials: dict
) -> dict:
    """Stage 1's evaluation of the production model; cfg holds targets, evaluation, gates and grades."""
    first = choose_on_validation(
        comb.targets,
        close,
        comb.split,
        comb.window,
        cfg["targets"],
        comb.target,
        trained.predictions,
        costs,
        cfg,
    )
    sharpes = list(trials["trial_sharpes"]) + [first["sharpe"]]
    return evaluate_on_test(first, comb.split, cfg, max(1, trials["n_trials"]), sharpes)


def production_vin(
    symbol: str,
    window: int,
    target: str,
    model,
    params: dict,
    grade: str,
    data_end: str,
    model_sha256: str,
    data_version: str,
    encoder_version: str | None,
) -> str:
    """The VIN of a production model; the date is the last bar of the data, so a rerun gives the same code."""
    date = pd.Timestamp(data_end).strftime("%Y%m%d")
    identity = {
        "symbol": symbol,
        "target": target,
        "window": window,
        "kind": model.kind,
        "params": params,
        "date": date,
        "model_sha256": model_sha256,
        "data_version": data_version,
        "encoder_version": encoder_version,
    }
    # Stage 4 tunes continuous values (0.06094611795264643): the VIN shows 3 significant digits, the exact values
    # stay in config.json and in the identity hash of the VIN's suffix.
    shown = {k: float(f"{v:.3g}") if isinstance(v, float) else v for k, v in params.items()}
    fields = vin_fields_for_lgbm(
        shown,
        grade=grade,
        target=parse_target_id(target),
        window=window,
        date=date,
        identity=identity,
        best_iteration=model.best_iteration,
        model_type=model.vin_type,
    )
    return encode_vin(fields)


def score_of(evaluation: dict) -> float | None:
    """The registry's ranking score: per-trade Sharpe after costs on the test segment (None without trades)."""
    value = evaluation["after_costs"].get("sharpe_per_trade")
    return None if value is None or not math.isfinite(float(value)) else float(value)


def folder_documents(
    comb: Combination,
    trained: Trained,
    tuning: dict[str, dict],
    evaluation: dict,
    trials: dict,
    costs: dict,
    spec: dict,
    *,
    data_version: str,
    data_end: str,
    model_sha256: str,
    threads: int,
) -> dict[str, Any]:
    """The JSON files of a production folder (docs/REGISTRY.md): {file name: document}. Deterministic: no
    timings (the job's time is in its benchmark file), so a rerun writes the same bytes."""
    model = trained.model
    tuned, tuned_stage = tuned_params(comb, tuning)
    grade = evaluation["grade"]["grade"]
    vin = production_vin(
        comb.symbol,
        comb.window,
        comb.target,
        model,
        trained.params,
        grade,
        data_end,
        model_sha256,
        data_version,
        comb.encoder_version,
    )
    features = list(comb.X.columns)
    prefix = spec["encoder"].get("prefix") or "shared__"
    return {
        "config.json": {
            "symbol": comb.symbol,
            "window": comb.window,
            "side": comb.side,
            "target": comb.target,
            "model_type": model.model_type,
            "model_kind": model.kind,
            "params": trained.params,
            "tuned_params": tuned,
            "tuned_in": tuned_stage,
            "native_params": model.native_params,
            "model": spec["model"],
            "tuning": {
                stage: {
                    "study_name": r["study_name"],
                    "best_value": r["best_value"],
                    "finished_trials": r["finished_trials"],
                }
                for stage, r in sorted(tuning.items())
            },
            "dependencies": {"data_version": data_version, "encoder_version": comb.encoder_version},
        },
        "metrics.json": {
            "vin": vin,
            "grade": evaluation["grade"],
            "gate": {
                "profile": evaluation["gate"]["profile"],
                "passed": evaluation["gate"]["passed"],
                "reasons": evaluation["gate"]["reasons"],
            },
            "score": score_of(evaluation),
            "score_definition": "after-cost per-trade Sharpe on the test segment",
            "best_iteration": model.best_iteration,
            "validation_average_precision": trained.validation_ap,
            "test_average_precision": trained.test_ap,
            "rows": {seg: len(comb.rows[seg]) for seg in ("train", "validation", "test")},
            "dsr_trials": {k: v for k, v in trials.items() if k != "trial_sharpes"},
            "evaluation": evaluation,
        },
        "costs.json": costs,
        "features.json": {
            "features": features,
            "spec": spec["features"],
            "universe": spec["universe"],
            "encoder": None
            if comb.encoder_version is None
            else {
                "file": ENCODER_FILE,
                "version": comb.encoder_version,
                "columns": [c for c in features if c.startswith(prefix)],
            },
        },
        "split_indices.json": {seg: comb.rows[seg].tolist() for seg in ("train", "validation", "test")},
        "training_log.json": model.log
        | {
            "threads": int(threads),
            "train_rows": len(comb.rows["train"]),
            "validation_rows": len(comb.rows["validation"]),
        },
    }


def write_folder(folder, model, make_documents: Callable[[str], dict[str, Any]], encoder_path=None) -> Path:
    """Write a production folder: the model file first (its sha256 goes into the VIN: `make_documents(sha256)`
    returns {file name: JSON document}), the documents, a copy of the shared encoder, then sha256.txt LAST."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    documents = make_documents(artifacts.sha256_file(model.save(folder)))
    for name, doc in documents.items():
        artifacts.write_json(folder / name, doc)
    if encoder_path is not None:
        artifacts.write_bytes(folder / ENCODER_FILE, Path(encoder_path).read_bytes())
    return write_sha256(folder)


def summary_row(config: dict, metrics: dict) -> dict:
    after = metrics["evaluation"]["after_costs"]
    return {
        "symbol": config["symbol"],
        "window": config["window"],
        "side": config["side"],
        "target": config["target"],
        "model_type": config["model_type"],
        "params": " ".join(f"{k}={v}" for k, v in sorted(config["tuned_params"].items())),
        "validation_average_precision": metrics["validation_average_precision"],
        "test_average_precision": metrics["test_average_precision"],
        "n_trades": after["n_trades"],
        "net_total_return": after["total_return"],
        "sharpe_per_trade": after["sharpe_per_trade"],
        "dsr": after["dsr"],
        "max_drawdown": after["max_drawdown"],
        "dsr_trials": metrics["dsr_trials"]["n_trials"],
        "gate_passed": metrics["gate"]["passed"],
        "grade": metrics["grade"]["grade"],
        "vin": metrics["vin"],
    }


def summary_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).sort_values(["symbol", "window", "side"]).reset_index(drop=True)
