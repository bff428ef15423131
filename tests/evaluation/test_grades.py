from pathlib import Path

import pytest
import yaml

from workflow_scripts.evaluation.grades import (
    grade_absolute,
    grade_metric,
    grade_percentile,
    grade_run,
    percentile_ranks,
)

CFG = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "grades" / "default.yaml").read_text())


@pytest.mark.parametrize(
    "sr, grade",
    [
        (0.45, "S"),
        (0.30, "S"),
        (0.2999, "A"),
        (0.20, "A"),
        (0.15, "B"),
        (0.10, "C"),
        (0.05, "D"),
        (0.0499, "F"),
        (-1.0, "F"),
        (None, "F"),
        (float("nan"), "F"),
    ],
)
def test_seed_004_table(sr, grade):
    assert grade_absolute(sr) == grade
    assert grade_absolute(sr, CFG["table"]) == grade


def test_table_is_configurable_and_basis_recorded():
    table = [["S", 0.35], ["A", 0.25]]
    assert grade_absolute(0.30, table) == "A" and grade_absolute(0.2, table, "F") == "F"
    m = {"sharpe_per_trade": 0.22, "sharpe": 3.1}
    assert grade_metric(m, CFG) == {"grade": "A", "basis": "per_trade", "value": 0.22}
    ann = grade_metric(m, {"basis": "annualised", "table": [["S", 3.0], ["A", 2.0]]})
    assert ann == {"grade": "S", "basis": "annualised", "value": 3.1}
    with pytest.raises(ValueError, match="descending"):
        grade_absolute(0.1, [["A", 0.1], ["S", 0.3]])


def test_percentile_scale_of_seed_003():
    values = [float(i) for i in range(20)]  # mid-rank percentiles 2.5, 7.5, ..., 97.5
    grades = grade_percentile(values, CFG["percentile_scale"])
    assert grades[-1] == "S" and grades[-2] == "A+" and grades[-3] == "A" and grades[-4] == "A"
    assert grades[:4] == ["F"] * 4 and grades[4] == "D"
    assert percentile_ranks([1.0, 1.0]).tolist() == [50.0, 50.0]  # ties share a rank
    assert grade_percentile([0.2, None]) == ["A-", "F"]  # missing values rank lowest and fail


def test_grade_run_methods():
    ms = [{"sharpe_per_trade": v} for v in (0.31, 0.12, 0.01)]
    assert [g["grade"] for g in grade_run(ms, CFG)] == ["S", "C", "F"]
    out = grade_run(ms, CFG | {"method": "percentile"})
    assert [g["grade"] for g in out] == ["A", "B", "F"] and out[0]["method"] == "percentile"
