"""Child process for the resume test: runs one small real study in a journal file (argv: journal,
n_trials)."""

import sys
import time

from tests.tuning.conftest import synthetic
from workflow_scripts.config.schema import config_group
from workflow_scripts.training import tuning

journal, n_trials, slow = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
X, y, positions, label_end = synthetic()
folds = tuning.cv_folds(
    positions,
    label_end,
    {**config_group("tuning")["cv"], "n_folds": 2, "embargo_bars": 2, "min_train_rows": 50},
)
cfg = {"space": {"num_leaves": [4, 8, 16], "learning_rate": [0.05, 0.1], "min_child_samples_frac": [0.01]}}
inner = tuning.make_objective(
    X,
    y,
    folds,
    tuning.broad_space(cfg),
    {"bagging_freq": 5, "bagging_fraction": 0.8},
    early_stopping_rounds=5,
    max_rounds=30,
    num_threads=1,
)


def objective(trial):
    value = inner(trial)
    time.sleep(slow)  # keeps each trial RUNNING long enough for the test to kill it mid-trial
    return value


result = tuning.run_stage(
    journal_path=journal,
    study_name="resume-test",
    objective=objective,
    n_trials=n_trials,
    seed=7,
    pruner_cfg=None,
)
print("FINISHED", result["finished_trials"], flush=True)
