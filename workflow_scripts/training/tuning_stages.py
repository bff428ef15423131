"""Stages 2-4 as the workflow runs them: which rows each stage scores on, study names, result files.

- Stage 2 (`stage2_representative` picks the combination per window from the stage-1 choices): the broad grid,
  scored on the chronological split (train rows fit, validation rows score), one study per window.
- Stage 3: the grid neighbours of the window's stage-2 best, scored with purged walk-forward CV over the
  train + validation rows of the combination (`tuning.cv_folds`); the test segment is never read.
- Stage 4: continuous ranges around the combination's stage-3 best, same CV.

Study names are deterministic: `{stage}-{key}-{digest}`, the digest over everything that defines the study's
trials (target, feature names, rows, folds, space, fixed parameters, early stopping, seed, sampler, pruner)
but not the budget, so a bigger budget continues the study and any other change starts a new one in the same
journal. The journal file lives beside the result JSON and is not a Snakemake output: a killed job leaves it,
and the rerun resumes the study (tuning.run_stage).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from workflow_scripts.training import tuning
from workflow_scripts.training.combination import Combination, chosen_target, no_model_reason

STAGE_PREVIOUS = {"stage2": None, "stage3": "stage2", "stage4": "stage3"}


def stage2_candidates(choices: list[dict]) -> list[dict]:
    """`tuning.representative` entries from the stage-1 choices of one window (combinations with a trained
    variant only)."""
    out = []
    for c in choices:
        if no_model_reason(c) is not None:
            continue
        best = c["best"]
        out.append(
            {
                "symbol": c["symbol"],
                "side": c["side"],
                "window": int(c["window"]),
                "target": best["target"],
                "validation_ap": float(best["validation_average_precision"]),
                "train_rows": int(best["train_rows"]),
            }
        )
    if not out:
        raise ValueError("no combination of this window has a trained stage-1 variant: nothing to tune")
    return out


def stage2_representative(choices: list[dict], rule: str) -> dict:
    """The stage-1 choice (the whole JSON) of the window's representative combination."""
    pick = tuning.representative(stage2_candidates(choices), rule)
    for c in choices:
        if c["symbol"] == pick["symbol"] and c["side"] == pick["side"]:
            chosen_target(c)
            return c
    raise AssertionError("representative not among the choices")  # unreachable: picked from them


def no_model_result(stage: str, record: dict) -> dict:
    """The result of a stage with nothing to tune (`record`: combination.no_model_record, or the window and
    reason alone for stage 2): no study, no trial (the slot trial count adds 0, training/trials.py),
    stopped_by "no_model"."""
    return {
        "stage": stage,
        **{k: v for k, v in record.items() if k != "reason"},
        "no_model": record["reason"],
        "finished_trials": 0,
        "trials": [],
        "stopped_by": "no_model",
    }


def stage_data(comb: Combination, stage: str, tuning_cfg: dict):
    """(X, y, folds) a stage scores on; folds index rows of X. Test rows never appear."""
    if stage == "stage2":
        tr, va = comb.rows["train"], comb.rows["validation"]
        pos = np.concatenate([tr, va])
        folds = [(np.arange(len(tr)), np.arange(len(tr), len(pos)))]
    elif stage in ("stage3", "stage4"):
        pos = comb.train_validation_rows()
        try:
            folds = tuning.cv_folds(pos, comb.label_end[pos], tuning_cfg["cv"])
        except ValueError as exc:
            raise ValueError(
                f"{comb.symbol} w{comb.window} {comb.side} ({comb.target}): {len(pos)} train + "
                f"validation rows cannot make the configured CV folds (tuning.cv): {exc}"
            ) from exc
    else:
        raise ValueError(f"not a tuning stage run by the workflow: {stage!r}")
    for tr, va in folds:
        for name, idx in (("training", tr), ("validation", va)):
            classes = np.unique(comb.labels[pos[idx]])
            if len(idx) == 0 or len(classes) < 2:
                raise ValueError(
                    f"{comb.symbol} w{comb.window} {comb.side} ({comb.target}) {stage}: a {name} "
                    f"fold has {len(idx)} rows and classes {classes.tolist()}; need >= 2 classes"
                )
    X = comb.X.iloc[pos].reset_index(drop=True)
    return X, comb.labels[pos].astype(np.int64), folds, pos


def study_seed(seed: int, key: str) -> int:
    """The sampler seed of one study: the config seed moved by the study's key, so studies of different
    combinations do not all draw the same first parameters (still deterministic)."""
    return int(seed) + int(hashlib.sha256(key.encode()).hexdigest()[:6], 16)


def study_name(stage: str, key: str, identity: dict) -> str:
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{stage}-{key}-{digest}"


def run_tuning_stage(
    stage: str,
    comb: Combination,
    tuning_cfg: dict,
    *,
    journal_path,
    previous: dict | None = None,
    key: str,
    threads: int = 1,
) -> dict:
    """Run (or resume) the study of one stage for one combination; return its result (budget and spend
    included).

    `previous`: the result JSON of the stage before (stage 2 for stage 3, stage 3 for stage 4).
    """
    best = None
    if STAGE_PREVIOUS[stage] is not None:
        if previous is None or previous.get("best_params") is None:
            raise ValueError(f"{stage} needs a finished {STAGE_PREVIOUS[stage]} with a best trial")
        best = previous["best_params"]
    space = tuning.space_for_stage(tuning_cfg, stage, best)
    X, y, folds, pos = stage_data(comb, stage, tuning_cfg)
    pruner = tuning_cfg["pruner"]
    esr = int(tuning_cfg["early_stopping_rounds"][stage])
    identity = {
        "target": comb.target,
        "features": list(X.columns),
        "rows": pos.tolist(),
        "folds": [[len(t), len(v)] for t, v in folds],
        "space": space,
        "fixed": tuning_cfg["fixed"],
        "early_stopping_rounds": esr,
        "max_rounds": tuning_cfg["max_rounds"],
        "seed": tuning_cfg["seed"],
        "sampler": tuning_cfg["sampler"],
        "pruner": pruner,
        "report_every": tuning_cfg["report_every"],
        "encoder_version": comb.encoder_version,
    }
    objective = tuning.make_objective(
        X,
        y,
        folds,
        space,
        tuning_cfg["fixed"],
        early_stopping_rounds=esr,
        max_rounds=int(tuning_cfg["max_rounds"]),
        seed=int(tuning_cfg["seed"]),
        num_threads=int(threads),
        report_every=int(tuning_cfg["report_every"]),
        pruning=pruner["kind"] != "none",
        report=pruner["report"],
    )
    budget = tuning.stage_budget(tuning_cfg, stage)
    # Stage 3 starts at the window's stage-2 best (the centre of its narrowed grid), then searches around it.
    start = [{k: v for k, v in best.items() if k in space}] if stage == "stage3" else []
    result = tuning.run_stage(
        journal_path=journal_path,
        study_name=study_name(stage, key, identity),
        objective=objective,
        n_trials=budget["n_trials"],
        timeout_s=budget["timeout_s"],
        seed=study_seed(tuning_cfg["seed"], key),
        sampler=tuning_cfg["sampler"],
        pruner_cfg=pruner,
        stale_after_s=float(tuning_cfg["stale_after_s"]),
        budget=budget,
        enqueue=start,
    )
    return {
        "stage": stage,
        "symbol": comb.symbol,
        "window": comb.window,
        "side": comb.side,
        "target": comb.target,
        "journal": str(journal_path),
        "space": space,
        "previous_best_params": best,
        "rows": {
            "train": len(comb.rows["train"]),
            "validation": len(comb.rows["validation"]),
            "scored_on": len(pos),
        },
        "folds": [{"train_rows": len(t), "validation_rows": len(v)} for t, v in folds],
        "n_features": int(X.shape[1]),
        "encoder_version": comb.encoder_version,
    } | result
