"""Hybrid: its bars are validation's (fit part, choice part), a production model that trained on them is
refused, the probabilities come from the evaluated models and the dependency record follows the model
bytes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.agents.conftest import production_folder
from tests.conftest import hourly
from workflow_scripts.agents.hybrid import (
    check_train_only,
    dependencies,
    hybrid_segments,
    production_probabilities,
)

N = 300


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"timestamp": hourly(N)} | {f"f{i}": rng.normal(size=N) for i in range(3)})


def _labels(table):
    return np.digitize(table["f0"].to_numpy(), [-0.5, 0.5])


def test_segments_split_validation_and_refuse_too_few_bars():
    assert hybrid_segments((100, 200), 0.6) == {"fit": (100, 160), "select": (160, 200)}
    with pytest.raises(ValueError, match=r"validation \[100, 102\) with fit_share 0.6 leaves fewer than 2"):
        hybrid_segments((100, 102), 0.6)


def test_a_production_model_that_saw_the_hybrid_bars_is_refused(tmp_path, table):
    folder = production_folder(tmp_path / "high", "high", table, _labels(table), np.arange(0, 200))
    assert check_train_only(folder, 200) == 199
    with pytest.raises(ValueError, match="trained on bar 199, at or after bar 150 .* in-sample"):
        check_train_only(folder, 150)


def test_probabilities_of_both_sides_and_their_dependencies(tmp_path, table):
    path = tmp_path / "features.parquet"
    table.to_parquet(path)
    labels = _labels(table)
    rows = np.arange(0, 150)
    folders = {s: production_folder(tmp_path / s, s, table, labels, rows) for s in ("high", "low")}
    proba = production_probabilities(folders, path)
    assert list(proba.columns) == [
        "timestamp",
        *[f"p_{s}_{c}" for s in ("high", "low") for c in ("neither", "breakout", "reversion")],
    ]
    np.testing.assert_allclose(proba.filter(like="p_high").sum(axis=1), 1.0, atol=1e-6)
    deps = dependencies(folders)
    assert deps["high"]["model_file"] == "model.txt" and deps["low"]["vin"] == "LGBM-TEST-LOW"
    other = production_folder(tmp_path / "other" / "high", "high", table, labels, np.arange(0, 100))
    changed = dependencies({"high": other, "low": folders["low"]})
    assert changed["high"]["model_sha256"] != deps["high"]["model_sha256"]
    assert changed["low"] == deps["low"]
