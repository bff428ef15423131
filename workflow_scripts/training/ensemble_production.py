"""Ensemble production folders (config `ensemble.enabled`): per (symbol, side), the symbol's production models
of every window combined into one model that is evaluated, gated, named, registered and loaded like any other.

Which heads are combinable: a production run trains one model kind per (symbol, window, side), so the heads of
one (symbol, side) are the windows' best combinations. They predict the same classes (0 neither, 1 breakout,
2 reversion of that side) but each its own target (window and thresholds differ). The ensemble therefore
predicts ONE reference target: the member with the best validation macro average precision (ties: smaller
window). Its split, rows and labels are the ensemble's; every member is asked for probabilities on those bars.
- average: equal-weight mean of the members' probabilities (nothing fitted);
- stacker: `ensembles.fit_stacker` on the reference target's VALIDATION rows only (test stays untouched);
- `kind: auto` keeps the one with the better validation macro AP, the stacker scored out-of-fold
  (`ensembles.stacker_oof_proba`: purged walk-forward folds over the validation rows, embargoed by the label
  horizon), both kinds on the same out-of-fold rows, so the in-sample fit does not win by construction;
- fence: a stacker's trading threshold is chosen on those purged out-of-fold probabilities (validation rows
  without one are left out of the choice), never on the rows it was fitted on; its test segment is predicted
  by the stacker fitted on all validation rows.
Members are the `top_k` best by validation AP. The folder (docs/REGISTRY.md contract; kinds ensemble_average
and ensemble_stacker of models/kinds.py, model_type "ensemble") holds `ensemble.json` (the model file:
coefficients or weights, members with window, VIN, model type, model sha256 and source path) and
`members/w<window>/`, a verified copy of each member folder, so the registered folder is self-contained and
covered by its own sha256.txt. Loading it is the kinds' predictor, models/ensembles.predictor.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.evaluation.evidence import EVIDENCE_FILE, validation_evidence
from workflow_scripts.evaluation.metrics import macro_average_precision
from workflow_scripts.evaluation.variant_evaluation import choose_on_validation, evaluate_on_test
from workflow_scripts.evaluation.vin import encode_vin, vin_fields_for_lgbm
from workflow_scripts.models import ensembles
from workflow_scripts.models.ensembles import MEMBERS_DIR, Ensemble
from workflow_scripts.models.folder import load_folder, read_model_meta, verify_folder, write_sha256
from workflow_scripts.models.kinds import KINDS
from workflow_scripts.targets.grammar import horizon_bars, parse_target_id
from workflow_scripts.training.production import test_record
from workflow_scripts.training.stage1 import prediction_frame, variant_rows
from workflow_scripts.training.trials import slot_of_folders


def member_probas(folders: Mapping[str, Path], frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """(n_bars, 3) probabilities of every member (folder.load_folder: hash-verified) on the whole table; a
    member with a shared-encoder copy appends its encoder columns itself (folder.LoadedModel.with_encoder)."""
    return {name: load_folder(f).predict_proba(frame) for name, f in folders.items()}


def choose_reference(metrics: Mapping[str, dict], windows: Mapping[str, int]) -> str:
    """The member whose target the ensemble predicts: best validation macro AP, ties by smaller window."""

    def key(name):
        ap = metrics[name].get("validation_average_precision")
        ap = -math.inf if ap is None or not math.isfinite(float(ap)) else float(ap)
        return (-ap, windows[name], name)

    return min(metrics, key=key)


def fit_ensemble(
    members: Sequence[dict],
    probas: Mapping[str, np.ndarray],
    rows: Mapping[str, np.ndarray],
    labels: np.ndarray,
    spec: Mapping[str, Any],
    *,
    label_end: np.ndarray,
    embargo: int,
) -> tuple[Ensemble, dict, np.ndarray]:
    """Average and stacker over `members` on the reference rows; returns the chosen ensemble, the validation
    scores of both ({"average": ap, "stacker_oof": ap, "oof_rows": n, "chosen": kind}) and the stacker's
    purged out-of-fold probabilities on the validation rows (NaN where none; `label_end` by bar position as
    `labels`, `embargo` the label horizon in bars). Both kinds are scored on the same out-of-fold rows."""
    names = [m["name"] for m in members]
    val = rows["validation"]
    y_val = labels[val].astype(np.int64)
    val_p = {n: np.asarray(probas[n])[val] for n in names}
    average = ensembles.fit_average(members)
    stacker = ensembles.fit_stacker(members, val_p, y_val, C=float(spec["C"]))
    oof = ensembles.stacker_oof_proba(
        members,
        val_p,
        y_val,
        n_folds=int(spec["oof_folds"]),
        C=float(spec["C"]),
        positions=val,
        label_end=np.asarray(label_end)[val],
        embargo=int(embargo),
    )
    ok = ensembles.oof_rows(oof)
    avg_p = ensembles.predict_proba(average, val_p)
    scores = {
        "average": float(macro_average_precision(y_val[ok], avg_p[ok])),
        "stacker_oof": float(macro_average_precision(y_val[ok], oof[ok])),
        "oof_rows": int(ok.sum()),
    }
    kind = spec["kind"]
    if kind == "auto":
        kind = "stacker" if scores["stacker_oof"] > scores["average"] else "average"
    scores["chosen"] = kind
    return (stacker if kind == "stacker" else average), scores, oof


def choice_predictions(
    scored: np.ndarray, proba: np.ndarray, validation: np.ndarray, oof: np.ndarray | None
) -> pd.DataFrame:
    """The prediction frame the threshold is chosen on: the fitted ensemble's probabilities on `scored` rows,
    except that a stacker's (`oof` given) validation rows carry their purged out-of-fold probabilities and
    validation rows without one are dropped: the choice never reads a row the stacker was fitted on."""
    proba = np.array(proba, dtype=float, copy=True)
    keep = np.ones(len(proba), dtype=bool)
    if oof is not None:
        proba[validation] = oof
        keep[validation] = ensembles.oof_rows(oof)
    rows = np.asarray(scored)[keep[scored]]
    return prediction_frame(rows, proba[rows])


def union_features(feature_lists: Sequence[Sequence[str]]) -> list[str]:
    out: list[str] = []
    for names in feature_lists:
        out += [c for c in names if c not in out]
    return out


def write_members(folder: Path, sources: Mapping[str, Path]) -> None:
    """Copy each member folder (already verified by the caller) to members/<name>/."""
    for name, src in sources.items():
        shutil.copytree(
            src, folder / MEMBERS_DIR / name, ignore=shutil.ignore_patterns(".snakemake_timestamp", "*.tmp")
        )


def _member_docs(folders: Mapping[int, Path]) -> tuple[list[dict], dict[str, dict], dict[str, Path]]:
    """Verified members, named w<window>: their ensemble.json entries, metrics and folders."""
    docs, metrics, paths = [], {}, {}
    for window, folder in sorted(folders.items()):
        folder = Path(folder)
        hashes = verify_folder(folder)
        meta = read_model_meta(folder)
        name = f"w{window}"
        metrics[name] = artifacts.read_json(folder / "metrics.json")
        paths[name] = folder
        docs.append(
            {
                "name": name,
                "window": int(window),
                "vin": meta["vin"],
                "model_type": meta["model_type"],
                "target": meta["target"],
                "sha256": hashes[meta["model_file"]],
                "path": folder.as_posix(),
                "validation_average_precision": metrics[name].get("validation_average_precision"),
            }
        )
    return docs, metrics, paths


def build_folder(
    outdir,
    member_folders: Mapping[int, Path],
    features: pd.DataFrame,
    targets: Mapping[int, pd.DataFrame],
    splits: Mapping[int, dict],
    bars: pd.DataFrame,
    costs: dict,
    spec: Mapping[str, Any],
    data_version: str,
) -> dict:
    """Write the ensemble production folder of one (symbol, side) from its windows' production folders; return
    its metrics.json. `spec`: ensemble, targets, evaluation, gates, grades groups."""
    docs, metrics, paths = _member_docs(member_folders)
    scores = {
        d["name"]: float(
            d["validation_average_precision"] if d["validation_average_precision"] is not None else np.nan
        )
        for d in docs
    }
    chosen = ensembles.select_members(scores, top_k=int(spec["ensemble"]["top_k"]))
    if len(chosen) < 2:
        raise ValueError(
            f"an ensemble needs at least 2 members with a validation average precision; "
            f"{[str(p) for p in paths.values()]} give {scores}"
        )
    docs = [d for d in docs if d["name"] in chosen]
    ref = choose_reference({n: metrics[n] for n in chosen}, {d["name"]: d["window"] for d in docs})
    ref_doc = next(d for d in docs if d["name"] == ref)
    window, target = ref_doc["window"], ref_doc["target"]
    config = {n: artifacts.read_json(paths[n] / "config.json") for n in chosen}
    symbol, side = config[ref]["symbol"], config[ref]["side"]
    table, split = targets[window], splits[window]
    if not features["timestamp"].equals(table["timestamp"]):
        raise ValueError(f"{symbol}: features and the w{window} targets are not aligned on the same bars")
    labels = table[target].to_numpy()
    rows = variant_rows(labels, split, table["label_end"].to_numpy().astype(np.int64))
    probas = member_probas({n: paths[n] for n in chosen}, features)
    horizon = horizon_bars(window, spec["targets"])
    label_end = table["label_end"].to_numpy().astype(np.int64)
    ens, val_scores, oof = fit_ensemble(
        docs, probas, rows, labels, spec["ensemble"], label_end=label_end, embargo=horizon
    )
    proba = ensembles.predict_proba(ens, probas)
    scored = rows["scored"]
    predictions = prediction_frame(scored, proba[scored])
    # The stacker's threshold is chosen on its purged out-of-fold validation probabilities (fence).
    chosen_on = choice_predictions(scored, proba, rows["validation"], oof if ens.kind == "stacker" else None)
    ap = {
        seg: float(macro_average_precision(labels[rows[seg]].astype(np.int64), proba[rows[seg]]))
        for seg in ("validation", "test")
    }

    close = bars["close"].to_numpy()
    first = choose_on_validation(table, close, split, window, spec["targets"], target, chosen_on, costs, spec)
    member_sharpes = [metrics[n]["evaluation"]["after_costs"].get("sharpe_per_trade") for n in chosen]
    # The slot's count (training/trials.py): every window's variants, tuning trials and the ensembles.
    n_trials = slot_of_folders([metrics[n] for n in metrics])
    evaluation = evaluate_on_test(first, split, spec, n_trials, member_sharpes + [first["sharpe"]])

    folder = Path(outdir)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    write_members(folder, {n: paths[n] for n in chosen})
    ensembles.save_ensemble(folder, ens)
    model_sha = artifacts.sha256_file(folder / ensembles.ENSEMBLE_FILE)
    date = pd.Timestamp(bars["timestamp"].iloc[-1]).strftime("%Y%m%d")
    grade = evaluation["grade"]["grade"]
    encoder_version = config[ref].get("dependencies", {}).get("encoder_version")
    kind = KINDS[f"ensemble_{ens.kind}"]
    identity = {
        "symbol": symbol,
        "target": target,
        "window": window,
        "kind": kind.name,
        "members": [d["vin"] for d in docs],
        "date": date,
        "model_sha256": model_sha,
        "data_version": data_version,
        "encoder_version": encoder_version,
    }
    vin = encode_vin(
        vin_fields_for_lgbm(
            {},
            grade=grade,
            target=parse_target_id(target),
            window=window,
            date=date,
            identity=identity,
            model_type=kind.vin_type,
        )
    )
    member_features = [artifacts.read_json(paths[n] / "features.json") for n in chosen]
    feature_names = union_features([f["features"] for f in member_features])
    encoder = next(
        (
            dict(f["encoder"], file=f"{MEMBERS_DIR}/{n}/{f['encoder']['file']}")
            for n, f in zip(chosen, member_features)
            if f.get("encoder")
        ),
        None,
    )
    metrics_doc = test_record(vin, evaluation) | {
        "best_iteration": None,
        "validation_average_precision": ap["validation"],
        "test_average_precision": ap["test"],
        "ensemble_validation_scores": val_scores,
        "rows": {seg: len(rows[seg]) for seg in ("train", "validation", "test")},
        "dsr_trials": {"n_trials": n_trials, "members": {n: metrics[n].get("dsr_trials") for n in chosen}},
        "evaluation": evaluation,
    }
    documents = {
        "config.json": {
            "symbol": symbol,
            "window": window,
            "side": side,
            "target": target,
            "model_type": kind.model_type,
            "model_kind": kind.name,
            "params": {},
            "ensemble": dict(spec["ensemble"]),
            "reference_member": ref,
            "members": ensembles.registry_members(ens),
            "horizon_bars": horizon_bars(window, spec["targets"]),
            "dependencies": {"data_version": data_version, "encoder_version": encoder_version},
        },
        "metrics.json": metrics_doc,
        "costs.json": costs,
        "features.json": {
            "features": feature_names,
            "spec": member_features[0].get("spec"),
            "universe": member_features[0].get("universe"),
            "encoder": encoder,
        },
        "split_indices.json": {seg: rows[seg].tolist() for seg in ("train", "validation", "test")},
        "training_log.json": {"members": chosen, "fitted_on": ens.fitted_on},
    }
    # The stacker is fitted on the validation rows: its validation returns are in-sample, so the registry does
    # not take them as evidence (lifecycle/compare.py, `usable`).
    documents[EVIDENCE_FILE] = validation_evidence(
        table,
        close,
        split,
        window,
        spec["targets"],
        target,
        predictions,
        costs,
        evaluation["rule"],
        spec["gates"],
        n_trials=n_trials,
        in_sample_fit=ens.kind == "stacker",
    )
    for name, doc in documents.items():
        artifacts.write_json(folder / name, doc)
    write_sha256(folder)
    return metrics_doc
