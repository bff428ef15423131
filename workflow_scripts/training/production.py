"""Production training of one best combination and the production folder (docs/REGISTRY.md, the contract).

`fit_head(kind, ...)` trains a head with the `fit` of the kind's entry in models/kinds.py (the one model-kind
table); every kind returns a kinds.FittedHead: predict_proba(X) -> (rows, 3), save(folder) -> the ONE model
file, kind, model_type (config.json's model_type), vin_type (the VIN's TYPE), best_iteration, native_params
(what the library was given), log (facts for training_log.json). A new kind is one entry in kinds.KINDS.

Two rules share this module: fit_production (`fit`, `write_fit`: the fits, which no cost, gate or grade
enters) and evaluate_production (`read_fit`, `assemble`: evaluation with the cost snapshot and the folder), so
a cost or gate change re-evaluates without refitting.

Training (`train_combination`): the tuned stage-4 parameters over the model config's `params`, early stopping
on the chronological validation segment, then predictions for every scored event bar of validation and test.
Evaluation (`evaluate_production`) is stage 1's, unchanged: the threshold is chosen on validation, the test
segment is traded once with the symbol's cost snapshot, the DSR counts every trial behind the model (stage-1
variants of its side + tuning trials of stages 2-4).

Refit for deployment (`refit_combination`, docs/LIFECYCLE.md): after evaluation the same configuration (kind,
tuned parameters, seed) is trained again on every usable row from the training segment's start through the
last bar whose label is known (train + validation + test, no segment purges; the end is purged by the label
horizon because the last H bars' labels are not known), with the number of rounds fixed by REFIT_RULE and no
early stopping. The folder holds both models: the evaluated one (top level, its honest test record) and the
refit (refit/, models/folder.py REFIT_DIR), which is registered, deployed and used for predictions. The VIN's
date is the refit's last training bar.
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
from workflow_scripts.evaluation.evidence import EVIDENCE_FILE, validation_evidence
from workflow_scripts.evaluation.variant_evaluation import choose_on_validation, evaluate_on_test
from workflow_scripts.evaluation.vin import encode_vin, vin_fields_for_lgbm
from workflow_scripts.models import kinds
from workflow_scripts.models.folder import REFIT_DIR, REFIT_FILE, write_sha256
from workflow_scripts.targets.grammar import parse_target_id
from workflow_scripts.training.combination import Combination
from workflow_scripts.training.stage1 import CLASSES, macro_average_precision, prediction_frame
from workflow_scripts.training.tuning import resolve_params

ENCODER_FILE = "encoder.json"
REFIT_RULE = (
    "boosting rounds: rounds_refit = min(num_boost_round, max(1, round(best_iteration * n_refit_rows / "
    "n_train_rows))); torch epochs: epochs_refit = the best epoch count of the validation early stop, "
    "unscaled (an epoch over n_refit_rows already takes n_refit_rows / n_train_rows times the gradient steps)"
)


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
    """Train a head of `kind` (config/model `kind`); the interface is in the module docstring. `bars` (the
    whole bar-ordered feature table, X_* index = bar positions) and `timestamps` (its bars' times) feed the
    windowed torch kinds; tree kinds ignore them."""
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
    """The best tuned parameters and the stage they come from: stage 4's best, or stage 3's when its CV score
    is higher (both are scored on the same purged walk-forward folds, so their scores compare)."""
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


def refit_rows(comb: Combination) -> np.ndarray:
    """Bar positions the deployment refit trains on: every row labelled 0/1/2 from the training segment's
    start whose label is known inside the data (label_end < the number of bars), so the last label-horizon
    bars are purged; no purge or embargo between segments (nothing is evaluated on the refit)."""
    positions = np.arange(len(comb.labels))
    n_bars = int(comb.split.get("bars", len(comb.labels)))
    usable = np.isin(comb.labels, CLASSES) & (comb.label_end < n_bars)
    return positions[usable & (positions >= int(comb.split["train"]["lo"]))]


def refit_rounds(
    best_iteration: int, n_refit_rows: int, n_train_rows: int, cap: int, scaled: bool = True
) -> int:
    """REFIT_RULE: boosting rounds scaled by the sample ratio and capped; torch epochs (`scaled=False`) as
    the validation early stop found them."""
    best = max(1, int(best_iteration))
    if not scaled:
        return best
    return int(max(1, min(int(cap), round(best * int(n_refit_rows) / max(1, int(n_train_rows))))))


def training_span(comb: Combination, rows: np.ndarray, hi: int) -> dict:
    """The span of a model trained on `rows` of the bars before `hi` (ISO timestamps and bar positions):
    first_bar = its first training row; last_bar = the last usable bar before `hi` (the last bar whose label
    ends before `hi`: every bar through it was available to the fit, event row or not); last_label_bar = the
    last bar that bar's label reads; last_row = its last training row. Recorded in metrics.json (the evaluated
    model, hi = the training segment's end; it early-stopped on validation) and refit/refit.json (the refit,
    hi = the number of bars)."""
    ts = pd.to_datetime(comb.targets["timestamp"], utc=True)
    positions = np.arange(len(comb.labels))
    usable = positions[(positions >= int(rows.min())) & (comb.label_end < int(hi))]
    first, last, row = int(rows.min()), int(usable.max()), int(rows.max())
    label = int(comb.label_end[last])
    return {
        "first_bar": ts.iloc[first].isoformat(),
        "last_bar": ts.iloc[last].isoformat(),
        "last_label_bar": ts.iloc[label].isoformat(),
        "last_row": ts.iloc[row].isoformat(),
        "first_pos": first,
        "last_pos": last,
        "last_label_pos": label,
        "last_row_pos": row,
    }


@dataclass
class Refitted:
    model: kinds.FittedHead  # what the kind's `refit` returned
    params: dict  # LightGBM-named parameters it was trained with
    document: dict  # refit/refit.json (model_sha256 added when written)


def refit_head(
    kind: str,
    X: pd.DataFrame,
    y,
    *,
    params: dict,
    seed: int,
    threads: int,
    model_cfg: dict,
    rounds: int,
    bars: pd.DataFrame | None = None,
    timestamps=None,
) -> kinds.FittedHead:
    """Train the deployment refit of `kind` (kinds.ModelKind `refit`) on X, y for exactly `rounds`."""
    spec = kinds.KINDS.get(kind)
    if spec is None or spec.refit is None:
        raise ValueError(f"model kind {kind!r} has no refit (models/kinds.py)")
    if not all(X.dtypes == np.float32):
        raise ValueError("X must be float32 columns")
    return spec.refit(
        spec, X, y, params, seed, threads, model_cfg, rounds=rounds, bars=bars, timestamps=timestamps
    )


def refit_combination(comb: Combination, tuned: dict, trained: Trained, model_cfg: dict, threads: int = 1):
    """The deployment refit of an evaluated combination (module docstring), or None for a kind without one."""
    spec = kinds.KINDS[model_cfg["kind"]]
    if spec.refit is None:
        return None
    rows = refit_rows(comb)
    n_train = len(comb.rows["train"])
    cap = int(model_cfg.get("num_boost_round") or trained.model.best_iteration)
    rounds = refit_rounds(trained.model.best_iteration, len(rows), n_train, cap, spec.refit_scaled)
    params = production_params(model_cfg, tuned, len(rows))
    model = refit_head(
        spec.name,
        comb.X.iloc[rows],
        comb.labels[rows].astype(np.int64),
        params=params,
        seed=int(model_cfg["seed"]),
        threads=threads,
        model_cfg=model_cfg,
        rounds=rounds,
        bars=comb.X,
        timestamps=comb.targets["timestamp"],
    )
    document = {
        "rule": REFIT_RULE,
        "model_kind": spec.name,
        "unit": "boosting rounds" if spec.refit_scaled else "epochs",
        "best_iteration": int(trained.model.best_iteration),
        "rounds": rounds,
        "cap": cap,
        "rows": {"refit": len(rows), "train": n_train},
        "params": params,
        "span": training_span(comb, rows, int(comb.split.get("bars", len(comb.labels)))),
        "evaluated_span": training_span(comb, comb.rows["train"], int(comb.split["train"]["hi"])),
    }
    return Refitted(model, params, document)


def dsr_trials(choice: dict, tuning_results: dict[str, dict]) -> dict:
    """Every trial behind the model: the stage-1 variants of its side (trained ones) and the finished trials
    of the tuning stages. Per-trade test Sharpes exist for the stage-1 variants only (tuning trials never
    touch the test segment), so they give the variance of the trials' Sharpes."""
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
    refit_sha256: str | None = None,
) -> str:
    """The VIN of a production model; the date (`data_end`) is the last training bar of the deployed model
    (the refit's; the last bar of the data for a folder without a refit), so a rerun gives the same code."""
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
    if refit_sha256 is not None:
        identity["refit_sha256"] = refit_sha256
    # Stage 4 tunes continuous values (0.06094611795264643): the VIN shows 3 significant digits, the exact
    # values stay in config.json and in the identity hash of the VIN's suffix.
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
    """The registry's ranking score: per-trade Sharpe after costs on the test segment (None without
    trades)."""
    value = evaluation["after_costs"].get("sharpe_per_trade")
    return None if value is None or not math.isfinite(float(value)) else float(value)


def test_record(vin: str, evaluation: dict) -> dict:
    """The head of a folder's metrics.json: its VIN and the test-segment record (grade, gate verdict, score),
    reported, never used for a decision (docs/LIFECYCLE.md)."""
    gate = evaluation["gate"]
    return {
        "vin": vin,
        "grade": evaluation["grade"],
        "gate": {"profile": gate["profile"], "passed": gate["passed"], "reasons": gate["reasons"]},
        "score": score_of(evaluation),
        "score_definition": "after-cost per-trade Sharpe on the test segment",
    }


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
    refit: Refitted | None = None,
    refit_sha256: str | None = None,
) -> dict[str, Any]:
    """The JSON files of a production folder (docs/REGISTRY.md): {file name: document}, refit/refit.json
    included when there is a refit. Deterministic: no timings (the job's time is in its benchmark file), so a
    rerun writes the same bytes."""
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
        data_end if refit is None else refit.document["span"]["last_bar"],
        model_sha256,
        data_version,
        comb.encoder_version,
        refit_sha256,
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
        "metrics.json": test_record(vin, evaluation)
        | {
            "best_iteration": model.best_iteration,
            "validation_average_precision": trained.validation_ap,
            "test_average_precision": trained.test_ap,
            "rows": {seg: len(comb.rows[seg]) for seg in ("train", "validation", "test")},
            "training_span": training_span(comb, comb.rows["train"], int(comb.split["train"]["hi"])),
            "deployed_model": "evaluated" if refit is None else "refit",
            # what lifecycle/paper.py needs to rebuild this target's outcomes on new bars
            "replay": {
                "horizon": int(evaluation["segment"]["horizon"]),
                "sigma_min_bars": int(spec["targets"]["sigma_min_bars"]),
            },
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
        }
        | ({} if refit is None else {"refit": refit.model.log}),
    } | (
        {}
        if refit is None
        else {f"{REFIT_DIR}/{REFIT_FILE}": refit.document | {"model_sha256": refit_sha256}}
    )


def write_folder(
    folder, model, make_documents: Callable[..., dict[str, Any]], encoder_path=None, refit=None
) -> Path:
    """Write a production folder: the model file first (its sha256 goes into the VIN: `make_documents(sha256)`
    returns {file name: JSON document}), with a `refit` (Refitted) its model in refit/ next
    (`make_documents(sha256, refit_sha256)`), the documents, a copy of the shared encoder, then sha256.txt
    LAST."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    model_sha256 = artifacts.sha256_file(model.save(folder))
    if refit is None:
        documents = make_documents(model_sha256)
    else:
        (folder / REFIT_DIR).mkdir()
        documents = make_documents(model_sha256, artifacts.sha256_file(refit.model.save(folder / REFIT_DIR)))
    for name, doc in documents.items():
        artifacts.write_json(folder / name, doc)
    if encoder_path is not None:
        artifacts.write_bytes(folder / ENCODER_FILE, Path(encoder_path).read_bytes())
    return write_sha256(folder)


def production_evidence(comb, trained, close, costs, spec, evaluation, trials) -> dict:
    """The folder's validation evidence (evaluation/evidence.py): the evaluated model's rule on validation,
    its DSR with the model's trial count (no trial Sharpes: those are test-segment values)."""
    return validation_evidence(
        comb.targets,
        close,
        comb.split,
        comb.window,
        spec["targets"],
        comb.target,
        trained.predictions,
        costs,
        evaluation["rule"],
        spec["gates"],
        n_trials=trials["n_trials"],
    )


FIT_FILE = "fit.json"
PREDICTIONS_FILE = "predictions.parquet"


@dataclass(frozen=True)
class SavedHead:
    """A head as fit_production wrote it, read back by evaluate_production: the facts of a kinds.FittedHead,
    and `save` copies its model file, so the production folder's model is byte for byte the fitted one. It
    never predicts: evaluation reads the fit's saved predictions."""

    path: Path
    files: tuple[str, ...]  # every file the head's save wrote (torch heads write metadata beside model.pt)
    kind: str
    model_type: str
    vin_type: str
    best_iteration: int
    native_params: dict
    log: dict

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        raise TypeError(f"{self.path}: a saved fit does not predict; load the production folder instead")

    def save(self, folder) -> Path:
        for name in self.files:
            artifacts.write_bytes(Path(folder) / name, (self.path.parent / name).read_bytes())
        return Path(folder) / self.path.name


def fit(comb: Combination, tuned: dict, model_cfg: dict, threads: int = 1) -> tuple[Trained, Refitted | None]:
    """The two fits of a combination (no cost, gate or grade enters them): the evaluated model (train
    segment, early-stopped on validation) and its deployment refit."""
    trained = train_combination(comb, tuned, model_cfg, threads=threads)
    return trained, refit_combination(comb, tuned, trained, model_cfg, threads=threads)


def _saved(model: kinds.FittedHead, folder: Path) -> dict:
    """Save `model` into `folder` (which holds nothing else of it) and return its facts for fit.json, with
    every file the save wrote."""
    before = {p.name for p in folder.iterdir()}
    path = model.save(folder)
    return {
        "model_file": path.name,
        "files": sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in before),
        "kind": model.kind,
        "model_type": model.model_type,
        "vin_type": model.vin_type,
        "best_iteration": int(model.best_iteration),
        "native_params": model.native_params,
        "log": model.log,
    }


def write_fit(folder, trained: Trained, refit: Refitted | None) -> Path:
    """The fit folder of rule fit_production: the model file, refit/ with the refit's model file, the
    predictions of every scored bar and fit.json (written last: its presence means the folder is whole)."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    document = _saved(trained.model, folder) | {
        "params": trained.params,
        "validation_average_precision": trained.validation_ap,
        "test_average_precision": trained.test_ap,
        "refit": None,
    }
    artifacts.write_parquet(folder / PREDICTIONS_FILE, trained.predictions)
    if refit is not None:
        (folder / REFIT_DIR).mkdir()
        document["refit"] = _saved(refit.model, folder / REFIT_DIR) | {
            "params": refit.params,
            "document": refit.document,
        }
    artifacts.write_json(folder / FIT_FILE, document)
    return folder


def _saved_head(folder: Path, facts: dict) -> SavedHead:
    path = folder / facts["model_file"]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the model file {FIT_FILE} names is missing (rerun fit_production)")
    missing = [f for f in facts["files"] if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: {missing} named in {FIT_FILE} are missing (rerun fit_production)")
    keys = ("kind", "model_type", "vin_type", "best_iteration", "native_params", "log")
    return SavedHead(path, tuple(facts["files"]), **{k: facts[k] for k in keys})


def read_fit(folder) -> tuple[Trained, Refitted | None]:
    """What write_fit wrote, as the Trained and Refitted that assemble() takes."""
    folder = Path(folder)
    doc = artifacts.read_json(folder / FIT_FILE)
    trained = Trained(
        _saved_head(folder, doc),
        doc["params"],
        pd.read_parquet(folder / PREDICTIONS_FILE),
        doc["validation_average_precision"],
        doc["test_average_precision"],
    )
    r = doc["refit"]
    refit = None if r is None else Refitted(_saved_head(folder / REFIT_DIR, r), r["params"], r["document"])
    return trained, refit


def assemble(
    folder,
    comb: Combination,
    trained: Trained,
    refit: Refitted | None,
    tuning: dict[str, dict],
    trials: dict,
    close: np.ndarray,
    costs: dict,
    spec: dict,
    *,
    data_version: str,
    data_end: str,
    threads: int = 1,
    encoder_path=None,
) -> dict:
    """Evaluate a fit once on test (threshold chosen on validation with the cost snapshot), write its
    validation evidence and the production folder (both models); returns the evaluation."""
    evaluation = evaluate_production(comb, trained, close, costs, spec, trials)
    evidence = production_evidence(comb, trained, close, costs, spec, evaluation, trials)

    def documents(model_sha256: str, refit_sha256: str | None = None) -> dict:
        return {EVIDENCE_FILE: evidence} | folder_documents(
            comb,
            trained,
            tuning,
            evaluation,
            trials,
            costs,
            spec,
            data_version=data_version,
            data_end=data_end,
            model_sha256=model_sha256,
            threads=threads,
            refit=refit,
            refit_sha256=refit_sha256,
        )

    write_folder(folder, trained.model, documents, encoder_path=encoder_path, refit=refit)
    return evaluation


def produce(
    folder,
    comb: Combination,
    tuned: dict,
    tuning: dict[str, dict],
    trials: dict,
    close: np.ndarray,
    costs: dict,
    spec: dict,
    *,
    data_version: str,
    data_end: str,
    threads: int = 1,
    encoder_path=None,
) -> tuple[Trained, dict]:
    """fit then assemble in one call (the two rules' work, for callers outside the workflow)."""
    trained, refit = fit(comb, tuned, spec["model"], threads=threads)
    evaluation = assemble(
        folder,
        comb,
        trained,
        refit,
        tuning,
        trials,
        close,
        costs,
        spec,
        data_version=data_version,
        data_end=data_end,
        threads=threads,
        encoder_path=encoder_path,
    )
    return trained, evaluation


def summary_row(config: dict, metrics: dict) -> dict:
    after = metrics["evaluation"]["after_costs"]
    return {
        "symbol": config["symbol"],
        "window": config["window"],
        "side": config["side"],
        "target": config["target"],
        "model_type": config["model_type"],
        "params": " ".join(f"{k}={_short_number(v)}" for k, v in sorted(config["tuned_params"].items())),
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


def _short_number(value):
    """A tuned float to 4 significant digits for the summary table (the folder keeps the exact value)."""
    return f"{value:.4g}" if isinstance(value, float) else value
