import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from workflow_scripts.config.schema import config_group
from workflow_scripts.training import tuning

REPO = Path(__file__).resolve().parents[2]
TUNING = config_group("tuning")
CFG = {
    "budget": {"trials": {"stage2": 10, "stage3": 3, "stage4": 2}, "minutes": 120},
    "space": {
        "num_leaves": [30, 50, 80],
        "max_depth": [5, 6, 7, 9],
        "feature_fraction": [0.7],
        "min_child_samples_frac": [0.01],
        "learning_rate": [0.01, 0.05, 0.1],
        "lambda_l1": [0.0, 0.01, 0.1],
    },
    "focus_radius": 0.25,
}


def _storage(path):
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def test_stage_budgets_are_per_study():
    b2, b3 = tuning.stage_budget(CFG, "stage2"), tuning.stage_budget(CFG, "stage3")
    assert (b2["n_trials"], b2["timeout_s"], b2["per"]) == (10, 120 * 60, "study")
    assert (b3["n_trials"], b3["timeout_s"]) == (3, 120 * 60)
    only_minutes = {**CFG, "budget": {"trials": {"stage2": 10, "stage3": 3}, "minutes": 10}}
    with pytest.raises(ValueError, match=r"tuning.budget.trials.stage4: expected the number of trials of"):
        tuning.stage_budget(only_minutes, "stage4")  # the trial budget binds; minutes is only a cap
    no_cap = {**CFG, "budget": {**CFG["budget"], "minutes": None}}
    assert tuning.stage_budget(no_cap, "stage2")["timeout_s"] is None
    with pytest.raises(ValueError, match="unknown tuning stage 'stage1'"):
        tuning.stage_budget(CFG, "stage1")


def test_spaces_narrow_then_focus():
    broad = tuning.broad_space(CFG)
    assert broad["max_depth"]["choices"] == [5, 6, 7, 9]
    narrow = tuning.narrowed_space(
        CFG, {"num_leaves": 30, "max_depth": 7, "learning_rate": 0.05, "lambda_l1": 0.1}
    )
    assert narrow["num_leaves"]["choices"] == [30, 50]
    assert narrow["max_depth"]["choices"] == [6, 7, 9]
    assert narrow["lambda_l1"]["choices"] == [0.01, 0.1]
    assert narrow["feature_fraction"]["choices"] == [0.7]
    focus = tuning.focused_space(
        CFG, {"num_leaves": 50, "max_depth": 6, "learning_rate": 0.05, "lambda_l1": 0.0}
    )
    assert focus["num_leaves"] == {"low": 37, "high": 63, "int": True}
    assert focus["learning_rate"]["log"] and focus["learning_rate"]["low"] == pytest.approx(0.0375)
    assert focus["lambda_l1"]["low"] == 0.0 and focus["lambda_l1"]["high"] == pytest.approx(0.025)
    assert focus["min_child_samples_frac"] == {"choices": [0.01]}


def test_min_child_samples_is_one_percent_of_training_rows():
    p = tuning.resolve_params({"bagging_freq": 5}, {"min_child_samples_frac": 0.01, "num_leaves": 30}, 12345)
    assert p["min_child_samples"] == 123 and "min_child_samples_frac" not in p


def test_stage_respects_trial_budget_and_resumes(tmp_path, data):
    X, y, positions, label_end = data
    folds = tuning.cv_folds(
        positions, label_end, {**TUNING["cv"], "n_folds": 3, "embargo_bars": 2, "min_train_rows": 50}
    )
    space = tuning.broad_space({"space": {"num_leaves": [4, 8], "learning_rate": [0.1, 0.2]}})
    obj = tuning.make_objective(
        X, y, folds, space, {}, early_stopping_rounds=5, max_rounds=40, report_every=5
    )
    journal = tmp_path / "s.journal"
    r1 = tuning.run_stage(
        journal_path=journal,
        study_name="s",
        objective=obj,
        n_trials=4,
        pruner_cfg={**TUNING["pruner"], "kind": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
        result_path=tmp_path / "r.json",
    )
    assert r1["finished_trials"] == 4 and (tmp_path / "r.json").exists()
    assert 0 < r1["best_value"] <= 1 and set(r1["best_params"]) == {"num_leaves", "learning_rate"}
    # Rerun with a bigger budget: continues from 4, does not start over.
    r2 = tuning.run_stage(journal_path=journal, study_name="s", objective=obj, n_trials=6)
    assert r2["finished_trials"] == 6 and len(r2["trials"]) == 6
    # Rerun with the budget spent: runs nothing.
    r3 = tuning.run_stage(journal_path=journal, study_name="s", objective=obj, n_trials=6)
    assert len(r3["trials"]) == 6


def _timing_free(result):
    """The result JSON without the keys that hold timings (tests/reliability/conftest.py drops the same)."""
    import json
    import re

    key = re.compile(r"(^|_)seconds$")

    def drop(x):
        if isinstance(x, dict):
            return {k: drop(v) for k, v in x.items() if not key.search(k)}
        if isinstance(x, list):
            return [drop(v) for v in x]
        return x

    return json.dumps(drop(result), sort_keys=True)


def _quadratic(sleep_s=0.0):
    def objective(trial):
        x = trial.suggest_float("x", -1, 1)
        n = trial.suggest_int("n", 1, 5)
        time.sleep(sleep_s)
        return -((x - 0.3) ** 2) - 0.01 * n

    return objective


def test_minutes_cap_binds_and_is_recorded(tmp_path):
    """A tiny wall-clock cap stops the study before its trial budget and says so; a rerun continues to the
    same trial count (the cap is per run, the trial budget is over every run)."""
    kw = {"journal_path": tmp_path / "t.journal", "study_name": "t", "n_trials": 4, "timeout_s": 0.05}
    r = tuning.run_stage(objective=_quadratic(0.1), **kw)
    assert r["finished_trials"] == 1 and r["stopped_by"] == "minutes_cap"  # a started trial is never cut
    assert r["budget"]["n_trials"] == 4 and r["budget"]["timeout_s"] == 0.05
    for _ in range(3):
        r = tuning.run_stage(objective=_quadratic(0.1), **kw)
    assert r["finished_trials"] == 4 and r["stopped_by"] == "trial_budget"
    again = tuning.run_stage(objective=_quadratic(0.1), **kw)  # budget reached: runs nothing more
    assert (
        again["finished_trials"] == 4 and len(again["trials"]) == 4 and again["stopped_by"] == "trial_budget"
    )


def test_trial_budget_binds_regardless_of_machine_speed(tmp_path):
    """The same study on a fast and on a slow (loaded) machine: the same number of finished trials, the same
    parameters and values, and the same result JSON apart from the keys that hold timings."""
    kw = {"n_trials": 6, "timeout_s": 600.0, "seed": 3, "budget": {"stage": "stage2"}}
    fast = tuning.run_stage(journal_path=tmp_path / "f.journal", study_name="s", objective=_quadratic(), **kw)
    slow = tuning.run_stage(
        journal_path=tmp_path / "s.journal", study_name="s", objective=_quadratic(0.05), **kw
    )
    assert fast["finished_trials"] == slow["finished_trials"] == 6
    assert fast["stopped_by"] == slow["stopped_by"] == "trial_budget"
    assert slow["spent_seconds"] > fast["spent_seconds"]
    assert _timing_free(fast) == _timing_free(slow)


def test_time_only_study_outside_the_workflow(tmp_path):
    """n_trials=None (agents' time-boxed studies) still runs until the cap, and says so."""

    def slow(trial):
        trial.suggest_float("x", 0, 1)
        time.sleep(0.2)
        return 0.0

    r = tuning.run_stage(
        journal_path=tmp_path / "t.journal", study_name="t", objective=slow, n_trials=None, timeout_s=0.5
    )
    assert 2 <= r["finished_trials"] <= 5 and r["stopped_by"] == "minutes_cap"


def test_pruning_callback_prunes_hopeless_trials(tmp_path, data):
    X, y, positions, label_end = data
    folds = tuning.cv_folds(positions, label_end, {**TUNING["cv"], "n_folds": 2, "min_train_rows": 50})
    # learning_rate 1e-4 barely moves the loss: the median pruner should cut those trials.
    space = {"learning_rate": {"choices": [0.3, 0.0001]}}
    obj = tuning.make_objective(
        X,
        y,
        folds,
        space,
        {"num_leaves": 8},
        early_stopping_rounds=50,
        max_rounds=60,
        report_every=5,
        report="iteration",
    )
    study = tuning.open_study(
        tmp_path / "p.journal",
        "p",
        pruner_cfg={**TUNING["pruner"], "n_startup_trials": 1, "n_warmup_steps": 5},
    )
    study.enqueue_trial({"learning_rate": 0.3})
    study.enqueue_trial({"learning_rate": 0.3})
    study.enqueue_trial({"learning_rate": 0.0001})
    study.optimize(obj, n_trials=3)
    states = [t.state for t in study.trials]
    assert states[:2] == [TrialState.COMPLETE] * 2 and states[2] == TrialState.PRUNED


def test_fold_pruning_stops_after_a_hopeless_fold(tmp_path, data):
    X, y, positions, label_end = data
    y_noise = y.copy()
    folds = tuning.cv_folds(positions, label_end, {**TUNING["cv"], "n_folds": 3, "min_train_rows": 50})
    # num_leaves 2 + a tiny learning rate is a weak model: pruned after its first fold.
    space = {"num_leaves": {"choices": [16, 2]}, "learning_rate": {"choices": [0.1, 1e-5]}}
    obj = tuning.make_objective(
        X, y_noise, folds, space, {"max_depth": 1}, early_stopping_rounds=5, max_rounds=30
    )
    study = tuning.open_study(
        tmp_path / "f.journal",
        "f",
        pruner_cfg={**TUNING["pruner"], "n_startup_trials": 2, "n_warmup_steps": 0},
    )
    for params in ({"num_leaves": 16, "learning_rate": 0.1},) * 2 + (
        {"num_leaves": 2, "learning_rate": 1e-5},
    ):
        study.enqueue_trial(params)
    study.optimize(obj, n_trials=3)
    last = study.trials[-1]
    assert last.state == TrialState.PRUNED and last.last_step == 0
    assert len(last.user_attrs["fold_scores"]) == 1


def test_killed_job_resumes_and_retries_running_trial(tmp_path):
    journal = tmp_path / "k.journal"
    budget = 8
    cmd = [sys.executable, str(REPO / "tests/tuning/_study_child.py"), str(journal), str(budget)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([*cmd, "0.4"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    killed_running = None
    try:
        while time.time() < deadline:
            time.sleep(0.1)
            if not journal.exists():
                continue
            trials = optuna.load_study(study_name="resume-test", storage=_storage(journal)).trials
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            # A trial that has reported a fold has suggested all its parameters (a kill between two
            # suggestions would leave partial params, and the retry would rightly sample the rest).
            running = [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]
            if len(done) >= 3 and running:
                child.send_signal(signal.SIGKILL)
                killed_running = running[0]
                break
        assert killed_running is not None, (
            child.stderr.read().decode() if child.poll() is not None else "slow"
        )
    finally:
        child.kill()
        child.wait()
    before = optuna.load_study(study_name="resume-test", storage=_storage(journal)).trials
    n_done_before = sum(t.state == TrialState.COMPLETE for t in before)
    assert n_done_before < budget
    assert before[killed_running.number].state == TrialState.RUNNING  # the dead process left it RUNNING

    out = subprocess.run(
        [*cmd, "0"], check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    after = optuna.load_study(study_name="resume-test", storage=_storage(journal)).trials
    assert [t.number for t in after[: len(before)]] == [t.number for t in before]  # continued, not restarted
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in after) == budget
    assert after[killed_running.number].state == TrialState.FAIL
    retries = [t for t in after if t.user_attrs.get("retry_of") == killed_running.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == killed_running.params
    assert "FINISHED 8" in out.stdout


def test_representative_rules():
    rows = [
        {"symbol": "BTCUSDT", "side": "high", "target": "a", "validation_ap": 0.4, "train_rows": 900},
        {"symbol": "ETHUSDT", "side": "low", "target": "b", "validation_ap": 0.6, "train_rows": 100},
        {"symbol": "SOLUSDT", "side": "high", "target": "c", "validation_ap": 0.5, "train_rows": 500},
    ]
    assert tuning.representative(rows)["symbol"] == "ETHUSDT"
    assert tuning.representative(rows, "most_rows")["symbol"] == "BTCUSDT"
    assert tuning.representative(rows, "median_ap")["symbol"] == "SOLUSDT"
