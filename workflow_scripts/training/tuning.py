"""Tuning stages 2-4: Optuna TPE studies in journal files, with budgets, pruning and resume (docs/TUNING.md).

- Search spaces come from config/tuning (`space`): stage 2 searches the whole grid (`broad_space`), stage 3
  the neighbours of the window's stage-2 best in that grid (`narrowed_space`), stage 4 continuous ranges of
  +-`focus_radius` around the combination's stage-3 best (`focused_space`). A parameter with one value is
  fixed.
- The objective trains LightGBM on each fold (purged walk-forward folds from `purged_walk_forward`, or the one
  train/validation split for stage 2) and returns the mean macro average precision over folds. Pruning is per
  fold: by default each fold's AP is reported at step = fold; optionally (`report="iteration"`) a LightGBM
  callback reports the validation multi_logloss (negated: higher is better, as the study) every few rounds at
  step `fold * max_rounds + round`, so the pruner compares like with like and can stop a trial inside a fit.
- Budgets are per study (`stage_budget`): `budget.trials[stage]` finished trials (COMPLETE or PRUNED, also
  across reruns) for each study of the stage. Per study, not a total split over the studies, so a study's
  budget does not change when a coin or a window is added (which would retune every combination) and does not
  shrink to nothing on a large universe. The trial budget binds, so the number of trials (and hence
  parameters, models, VINs, DSR) does not depend on machine speed. `budget.minutes` is only a safety cap on
  the wall-clock time of one run of a study; when it stops a study before its trial budget the result says so
  (`stopped_by: minutes_cap`, else `trial_budget`) and a rerun continues the study toward the same trial
  count.
- Storage: one JournalStorage + JournalFileBackend file per study (append-only, file-lock based, fine on a
  shared disk from several SLURM jobs; no SQLite). Rerunning resumes the study. A RUNNING trial whose process
  is dead (same host, pid gone) or whose heartbeat is older than `stale_after_s` is marked FAILED and its
  parameters are enqueued again.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from workflow_scripts import artifacts
from workflow_scripts.data.purged_walk_forward import purged_walk_forward
from workflow_scripts.models.heads import DATASET_KEYS, lightgbm_params, macro_average_precision

STAGES = ("stage1", "stage2", "stage3", "stage4")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# Parameters whose stage-4 range is searched on a log scale.
_LOG_PARAMS = {"learning_rate"}
# Lower / upper limits a focused range is clipped to.
_LIMITS = {
    "num_leaves": (2, 131072),
    "max_depth": (1, 64),
    "feature_fraction": (0.05, 1.0),
    "bagging_fraction": (0.05, 1.0),
    "learning_rate": (1e-4, 1.0),
    "lambda_l1": (0.0, math.inf),
    "lambda_l2": (0.0, math.inf),
    "min_child_samples_frac": (1e-5, 0.5),
}


# ----------------------------------------------------------------------------------------------- budgets
def stage_budget(tuning_cfg: dict, stage: str) -> dict:
    """Trials one study of `stage` runs and the wall-clock cap of one run of it (module docstring).

    `tuning_cfg["budget"]` holds `trials` ({stage: finished trials per study}; binds) and `minutes` (the cap
    of one run of a study, or null for none).
    """
    if stage not in STAGES[1:]:
        raise ValueError(f"unknown tuning stage {stage!r}; tuned stages: {list(STAGES[1:])}")
    budget = tuning_cfg["budget"]
    trials = (budget.get("trials") or {}).get(stage)
    if trials is None or int(trials) < 1:
        raise ValueError(
            f"tuning.budget.trials.{stage}: expected the number of trials of one study (>= 1), got "
            f"{trials!r}; the trial budget binds, `minutes` is only a safety cap"
        )
    minutes = budget.get("minutes")
    return {
        "stage": stage,
        "per": "study",
        "n_trials": int(trials),
        "minutes": minutes,
        "timeout_s": None if minutes is None else float(minutes) * 60.0,
    }


# ------------------------------------------------------------------------------------------ search spaces
def broad_space(tuning_cfg: dict) -> dict:
    """Stage 2: every value of every parameter in `space` (categorical)."""
    return {name: {"choices": _as_list(values)} for name, values in sorted(tuning_cfg["space"].items())}


def _around_best(tuning_cfg: dict, best: dict, around) -> dict:
    """Per parameter of `space`: its grid as fixed choices when it has one value or `best` lacks it, else
    `around(name, sorted grid, best value)` (the stage's own range rule)."""
    space = {}
    for name, values in sorted(tuning_cfg["space"].items()):
        grid = sorted(_as_list(values))
        if name not in best or len(grid) == 1:
            space[name] = {"choices": grid}
        else:
            space[name] = around(name, grid, float(best[name]))
    return space


def narrowed_space(tuning_cfg: dict, best: dict) -> dict:
    """Stage 3: for each parameter, the grid value closest to `best` (stage 2's best) and its grid
    neighbours."""

    def neighbours(name, grid, b):
        i = int(np.argmin([abs(float(v) - b) for v in grid]))
        return {"choices": grid[max(0, i - 1) : i + 2]}

    return _around_best(tuning_cfg, best, neighbours)


def focused_space(tuning_cfg: dict, best: dict) -> dict:
    """Stage 4: continuous range best * (1 +- focus_radius) per parameter (int-valued grids stay ints).

    A best of 0 (e.g. lambda_l1) gets [0, focus_radius * largest grid value]. Ranges are clipped to sane
    limits. Parameters with one grid value stay fixed.
    """
    radius = float(tuning_cfg["focus_radius"])

    def focus(name, grid, b):
        is_int = all(float(v).is_integer() and not isinstance(v, float) for v in grid)
        lo, hi = (0.0, radius * float(max(grid))) if b == 0 else (b * (1 - radius), b * (1 + radius))
        lim_lo, lim_hi = _LIMITS.get(name, (-math.inf, math.inf))
        lo, hi = max(lo, lim_lo), min(hi, lim_hi)
        if is_int:
            lo, hi = math.floor(lo), math.ceil(hi)
            return {"low": lo, "high": hi if hi != lo else lo + 1, "int": True}
        return {"low": lo, "high": hi, "log": name in _LOG_PARAMS and lo > 0}

    return _around_best(tuning_cfg, best, focus)


def space_for_stage(tuning_cfg: dict, stage: str, best: dict | None = None) -> dict:
    if stage == "stage2":
        return broad_space(tuning_cfg)
    if best is None:
        raise ValueError(f"{stage} needs the previous stage's best parameters")
    if stage == "stage3":
        return narrowed_space(tuning_cfg, best)
    if stage == "stage4":
        return focused_space(tuning_cfg, best)
    raise ValueError(f"no search space for {stage!r}")


def suggest_params(trial: optuna.Trial, space: dict) -> dict:
    params = {}
    for name, spec in space.items():
        if "choices" in spec:
            params[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif spec.get("int"):
            params[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]))
        else:
            params[name] = trial.suggest_float(
                name, float(spec["low"]), float(spec["high"]), log=spec.get("log", False)
            )
    return params


def resolve_params(fixed: dict, sampled: dict, n_train_rows: int) -> dict:
    """LightGBM-named parameters for one fit: fixed + sampled, `min_child_samples_frac` turned into rows.

    min_child_samples = max(1, round(frac * training rows)) - the adaptive 1 % of seed 001.
    """
    params = {**fixed, **sampled}
    frac = params.pop("min_child_samples_frac", None)
    if frac is not None:
        params["min_child_samples"] = max(1, round(float(frac) * n_train_rows))
    return params


# -------------------------------------------------------------------------------------------- objective
class LightGBMPruningCallback:
    """Report a validation metric to an Optuna trial during lgb.train and stop the fit when it should prune.

    Written here instead of importing optuna-integration: it is ten lines, and the step offset per fold (which
    the integration lacks) is what makes per-fold pruning comparable across trials.
    """

    order = 20  # before lgb.early_stopping (30)

    def __init__(
        self,
        trial,
        metric: str = "multi_logloss",
        valid_name: str = "validation",
        step_offset: int = 0,
        report_every: int = 1,
    ):
        self.trial, self.metric, self.valid_name = trial, metric, valid_name
        self.step_offset, self.report_every = int(step_offset), max(1, int(report_every))
        self._last_heartbeat = 0.0

    def __call__(self, env) -> None:
        if (env.iteration + 1) % self.report_every:
            return
        for data_name, metric_name, value, higher_is_better in env.evaluation_result_list:
            if data_name == self.valid_name and metric_name == self.metric:
                score = float(value) if higher_is_better else -float(value)
                self.trial.report(score, step=self.step_offset + env.iteration)
                _heartbeat(self.trial, min_interval_s=30.0, cb=self)
                if self.trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at fold step {self.step_offset + env.iteration}")
                return


def make_objective(
    X,
    y,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    space: dict,
    fixed: dict,
    *,
    early_stopping_rounds: int,
    max_rounds: int = 1000,
    seed: int = 42,
    num_threads: int = 1,
    report_every: int = 1,
    pruning: bool = True,
    report: str = "fold",
) -> Callable[[optuna.Trial], float]:
    """Objective: mean macro average precision over `folds` of LightGBM with the trial's parameters.

    X: DataFrame of features (float32), y: class codes 0/1/2 aligned with X; folds index rows of X. Build
    folds with `cv_folds` (stages 3-4) or pass the one (train, validation) split (stage 2).

    Pruning (`pruning=True`), `report` chooses the intermediate value:
    - "fold": each fold's macro AP at step = fold number; the pruner compares trials on the same fold, so a
      trial is stopped after the first fold that is hopeless. Fair to small learning rates.
    - "iteration": LightGBMPruningCallback reports -multi_logloss every `report_every` rounds at step
      fold * max_rounds + round; prunes inside a fit (cheaper per trial) but favours fast learners.
    """
    if report not in ("fold", "iteration"):
        raise ValueError(f"report must be 'fold' or 'iteration', got {report!r}")
    import lightgbm as lgb

    X_np = X.to_numpy(dtype=np.float32) if hasattr(X, "to_numpy") else np.asarray(X, dtype=np.float32)
    names = [str(c) for c in X.columns] if hasattr(X, "columns") else None
    y = np.asarray(y, dtype=np.int32)
    folds = [(np.asarray(t), np.asarray(v)) for t, v in folds]

    # Bin each fold once (bin edges from its training rows) and reuse it in every trial: only training
    # parameters change between trials. feature_pre_filter off, as min_child_samples varies per trial.
    ds_params = {k: v for k, v in lightgbm_params(fixed, seed, num_threads).items() if k in DATASET_KEYS}
    ds_params["feature_pre_filter"] = False
    datasets = []
    for tr, va in folds:
        dtrain = lgb.Dataset(
            X_np[tr], label=y[tr], feature_name=names or "auto", params=ds_params, free_raw_data=False
        ).construct()
        dval = lgb.Dataset(
            X_np[va], label=y[va], reference=dtrain, params=ds_params, free_raw_data=False
        ).construct()
        datasets.append((dtrain, dval))

    def objective(trial: optuna.Trial) -> float:
        _heartbeat(trial)
        sampled = suggest_params(trial, space)
        scores, best_iters = [], []
        for k, ((tr, va), (dtrain, dval)) in enumerate(zip(folds, datasets)):
            params = lightgbm_params(resolve_params(fixed, sampled, len(tr)), seed, num_threads)
            params["feature_pre_filter"] = False
            callbacks = [lgb.early_stopping(early_stopping_rounds, verbose=False)]
            if pruning and report == "iteration":
                callbacks.append(
                    LightGBMPruningCallback(trial, step_offset=k * max_rounds, report_every=report_every)
                )
            booster = lgb.train(
                params,
                dtrain,
                num_boost_round=max_rounds,
                valid_sets=[dval],
                valid_names=["validation"],
                callbacks=callbacks,
            )
            best = int(booster.best_iteration or booster.current_iteration())
            scores.append(macro_average_precision(y[va], booster.predict(X_np[va], num_iteration=best)))
            best_iters.append(best)
            _heartbeat(trial)
            if pruning and report == "fold":
                trial.report(scores[-1], step=k)
                if trial.should_prune():
                    trial.set_user_attr("fold_scores", [float(s) for s in scores])
                    raise optuna.TrialPruned(f"pruned after fold {k}")
        trial.set_user_attr("fold_scores", [float(s) for s in scores])
        trial.set_user_attr("best_iterations", best_iters)
        return float(np.nanmean(scores))

    return objective


def cv_folds(positions, label_end, cv_cfg: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds for stages 3-4 from config/tuning `cv` (n_folds, mode, embargo_bars, min_train_rows)."""
    return purged_walk_forward(
        positions,
        label_end,
        n_folds=int(cv_cfg["n_folds"]),
        mode=cv_cfg["mode"],
        embargo=int(cv_cfg["embargo_bars"]),
        min_train=int(cv_cfg["min_train_rows"]),
        train_size=cv_cfg["train_size"],
    )


# ------------------------------------------------------------------------------------- storage and runs
def open_study(
    journal_path,
    study_name: str,
    *,
    seed: int = 42,
    sampler: str = "tpe",
    pruner_cfg: dict | None = None,
    direction: str = "maximize",
) -> optuna.Study:
    """Create or load `study_name` in its journal file. The sampler seed moves on with the trial count so a
    resumed study does not replay the random start-up trials it already ran."""
    journal_path = Path(journal_path)
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal_path)))
    probe = (
        optuna.load_study(study_name=study_name, storage=storage) if _has_study(storage, study_name) else None
    )
    offset = len(probe.get_trials(deepcopy=False)) if probe else 0
    if sampler == "tpe":
        smp = optuna.samplers.TPESampler(seed=seed + offset)
    elif sampler == "random":
        smp = optuna.samplers.RandomSampler(seed=seed + offset)
    else:
        raise ValueError(f"unknown sampler {sampler!r}")
    return optuna.create_study(
        study_name=study_name,
        storage=storage,
        sampler=smp,
        pruner=make_pruner(pruner_cfg),
        direction=direction,
        load_if_exists=True,
    )


def make_pruner(pruner_cfg: dict | None) -> optuna.pruners.BasePruner:
    """`{kind: median, n_startup_trials, n_warmup_steps, interval_steps}` or `{kind: none}` / None."""
    if pruner_cfg is None or pruner_cfg["kind"] == "none":
        return optuna.pruners.NopPruner()
    kind = pruner_cfg["kind"]
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=int(pruner_cfg["n_startup_trials"]),
            n_warmup_steps=int(pruner_cfg["n_warmup_steps"]),
            interval_steps=int(pruner_cfg["interval_steps"]),
        )
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    raise ValueError(f"unknown pruner {kind!r}")


def recover_stale_trials(study: optuna.Study, stale_after_s: float = 3600.0) -> list[int]:
    """Mark RUNNING trials of dead processes FAILED and enqueue their parameters again; return their numbers.

    Dead: recorded on this host and its pid (with its start time, against pid reuse) no longer runs, or its
    heartbeat is older than `stale_after_s` (another host, e.g. a SLURM job that was killed). Two processes
    recovering at once cannot both retry a trial: only the one that flips its state enqueues.
    """
    storage = study._storage
    recovered = []
    now = time.time()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = t.user_attrs
        same_host = attrs.get("host") == socket.gethostname()
        if same_host and "pid" in attrs:
            dead = not _process_alive(int(attrs["pid"]), attrs.get("proc_start"))
        else:
            beat = float(attrs.get("heartbeat", t.datetime_start.timestamp() if t.datetime_start else 0.0))
            dead = now - beat > stale_after_s
        if not dead:
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, "fail_reason", "process died while RUNNING")
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except (
            optuna.exceptions.UpdateFinishedTrialError
        ):  # finished meanwhile, or recovered by another process
            continue
        if t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
        recovered.append(t.number)
    return recovered


def run_stage(
    *,
    journal_path,
    study_name: str,
    objective: Callable[[optuna.Trial], float],
    n_trials: int | None,
    timeout_s: float | None = None,
    seed: int = 42,
    sampler: str = "tpe",
    pruner_cfg: dict | None = None,
    stale_after_s: float = 3600.0,
    budget: dict | None = None,
    result_path=None,
    enqueue: Sequence[dict] = (),
) -> dict:
    """Run (or resume) one study until its budget is spent; return (and optionally write) its result.

    `enqueue`: parameter sets a NEW study tries first (e.g. the previous stage's best), part of the budget.

    Budget: `n_trials` finished (COMPLETE + PRUNED) trials, counted over every run of the study (a rerun after
    a kill or a cap continues where the journal stopped, up to the same n_trials). `timeout_s` (or None) is a
    safety cap on this run's wall-clock time: Optuna starts no new trial once it is spent (a started trial is
    never cut). `stopped_by` in the result: "trial_budget" (n_trials finished), "minutes_cap" (the cap
    stopped the run first) or "failed_trials" (trials ended FAIL, e.g. a NaN score). Several processes may run
    the same study at once; they stop together when the finished count reaches n_trials. `n_trials=None`
    (a time-boxed study outside the workflow, e.g. agents) runs until the cap: not reproducible.
    """
    if n_trials is None and timeout_s is None:
        raise ValueError("run_stage needs n_trials (the binding budget) and/or timeout_s (a safety cap)")
    study = open_study(journal_path, study_name, seed=seed, sampler=sampler, pruner_cfg=pruner_cfg)
    retried = recover_stale_trials(study, stale_after_s)
    if not study.get_trials(deepcopy=False):
        for params in enqueue:
            study.enqueue_trial(dict(params), user_attrs={"enqueued": "start point"})
    started = time.perf_counter()
    remaining = None if n_trials is None else max(0, int(n_trials) - _finished(study))
    if remaining is None or remaining > 0:
        caps = [] if n_trials is None else [optuna.study.MaxTrialsCallback(int(n_trials), states=FINISHED)]
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=None if timeout_s is None else float(timeout_s),
            callbacks=caps,
            gc_after_trial=False,
            show_progress_bar=False,
        )
    run_seconds = time.perf_counter() - started
    result = stage_result(
        study,
        n_trials=n_trials,
        timeout_s=timeout_s,
        retried=retried,
        run_seconds=run_seconds,
        budget=budget,
    )
    result["stopped_by"] = stop_reason(result["finished_trials"], n_trials, timeout_s, run_seconds)
    if result_path is not None:
        artifacts.write_json(result_path, result)
    return result


def stop_reason(finished: int, n_trials: int | None, timeout_s: float | None, run_seconds: float) -> str:
    """Why a study's run ended: "trial_budget" (the budget is reached: the reproducible case),
    "minutes_cap" (the wall-clock safety cap was spent first) or "failed_trials" (neither: failed trials
    used up the run's trials)."""
    if n_trials is not None and finished >= int(n_trials):
        return "trial_budget"
    if timeout_s is not None and run_seconds >= float(timeout_s):
        return "minutes_cap"
    return "failed_trials"


def stage_result(
    study: optuna.Study,
    *,
    n_trials=None,
    timeout_s=None,
    retried=(),
    run_seconds=0.0,
    budget: dict | None = None,
) -> dict:
    """Best parameters, budget accounting and the trial history of a study (plain JSON types)."""
    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    history = [
        {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "params": t.params,
            "seconds": _duration(t),
            "fold_scores": t.user_attrs.get("fold_scores"),
            "best_iterations": t.user_attrs.get("best_iterations"),
            "retry_of": t.user_attrs.get("retry_of"),
            "last_step": t.last_step,
        }
        for t in trials
    ]
    return {
        "study_name": study.study_name,
        "budget": {**(budget or {}), "n_trials": n_trials, "timeout_s": timeout_s},
        "finished_trials": counts["complete"] + counts["pruned"],
        "trial_counts": counts,
        "spent_seconds": _spent_seconds(study),
        "this_run_seconds": float(run_seconds),
        "retried_trials": list(retried),
        "best_value": None if best is None else best.value,
        "best_params": None if best is None else best.params,
        "best_trial": None if best is None else best.number,
        "best_iterations": None if best is None else best.user_attrs.get("best_iterations"),
        "trials": history,
    }


def representative(stage1_best: Sequence[dict], rule: str = "best_validation_ap") -> dict:
    """Pick stage 2's representative combination for one window from its stage-1 best variants.

    Each entry: {"symbol", "side", "target", "validation_ap", "train_rows", ...}. Rules: best_validation_ap
    (highest validation macro AP), most_rows (largest training set), median_ap (the variant at the median AP,
    the most typical one). Ties broken by symbol, side, target for determinism.
    """
    if not stage1_best:
        raise ValueError("no stage-1 results to choose a representative from")

    def key_tie(e):
        return (e.get("symbol", ""), e.get("side", ""), e.get("target", ""))

    if rule == "best_validation_ap":
        return min(stage1_best, key=lambda e: (-float(e["validation_ap"]), key_tie(e)))
    if rule == "most_rows":
        return min(stage1_best, key=lambda e: (-int(e["train_rows"]), key_tie(e)))
    if rule == "median_ap":
        ranked = sorted(stage1_best, key=lambda e: (float(e["validation_ap"]), key_tie(e)))
        return ranked[(len(ranked) - 1) // 2]
    raise ValueError(f"unknown representative rule {rule!r}")


# ------------------------------------------------------------------------------------------------ helpers
def _as_list(values) -> list:
    return list(values) if isinstance(values, (list, tuple)) else [values]


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def _duration(t) -> float | None:
    if t.datetime_start is None or t.datetime_complete is None:
        return None
    return (t.datetime_complete - t.datetime_start).total_seconds()


def _spent_seconds(study: optuna.Study) -> float:
    """Run time of every trial that ended (failed ones too: they spent budget)."""
    return float(sum(_duration(t) or 0.0 for t in study.get_trials(deepcopy=False) if t.state.is_finished()))


def _has_study(storage, name: str) -> bool:
    return any(s.study_name == name for s in storage.get_all_studies())


def _proc_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks after boot
    except OSError:
        return None


def _process_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    now_start = _proc_start(pid)
    return start is None or now_start is None or now_start == start


def _heartbeat(trial, min_interval_s: float = 0.0, cb: Any = None) -> None:
    """Record who runs the trial and that it is alive (user attrs host, pid, proc_start, heartbeat)."""
    now = time.time()
    if cb is not None:
        if now - cb._last_heartbeat < min_interval_s:
            return
        cb._last_heartbeat = now
    if "pid" not in trial.user_attrs:
        pid = os.getpid()
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", pid)
        trial.set_user_attr("proc_start", _proc_start(pid))
    trial.set_user_attr("heartbeat", now)
