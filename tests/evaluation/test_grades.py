from pathlib import Path

import numpy as np
import pytest
import yaml

from workflow_scripts.config.schema import config_group
from workflow_scripts.evaluation.grades import (
    INSUFFICIENT,
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
    assert grade_absolute(sr, CFG["table"], CFG["fail_grade"]) == grade


def test_table_is_configurable_and_basis_recorded():
    table = [["S", 0.35], ["A", 0.25]]
    assert grade_absolute(0.30, table, "F") == "A" and grade_absolute(0.2, table, "F") == "F"
    m = {"sharpe_per_trade": 0.22, "sharpe": 3.1, "n_trades": 40}
    ev = {"n_trades": 40, "min_trades": CFG["min_trades"]}
    assert grade_metric(m, CFG) == {"grade": "A", "basis": "per_trade", "value": 0.22} | ev
    ann = grade_metric(m, {**CFG, "basis": "annualised", "table": [["S", 3.0], ["A", 2.0]]})
    assert ann == {"grade": "S", "basis": "annualised", "value": 3.1} | ev
    with pytest.raises(ValueError, match="descending"):
        grade_absolute(0.1, [["A", 0.1], ["S", 0.3]], "F")


def test_percentile_scale_of_seed_003():
    values = [float(i) for i in range(20)]  # mid-rank percentiles 2.5, 7.5, ..., 97.5
    grades = grade_percentile(values, CFG["percentile_scale"], "F")
    assert grades[-1] == "S" and grades[-2] == "A+" and grades[-3] == "A" and grades[-4] == "A"
    assert grades[:4] == ["F"] * 4 and grades[4] == "D"
    assert percentile_ranks([1.0, 1.0]).tolist() == [50.0, 50.0]  # ties share a rank
    assert grade_percentile([0.2, None], CFG["percentile_scale"], "F") == [
        "A-",
        "F",
    ]  # missing values rank lowest and fail


def test_grade_run_methods():
    ms = [{"sharpe_per_trade": v, "n_trades": 100} for v in (0.31, 0.12, 0.01)]
    assert [g["grade"] for g in grade_run(ms, CFG)] == ["S", "C", "F"]
    out = grade_run(ms, CFG | {"method": "percentile"})
    assert [g["grade"] for g in out] == ["A", "B", "F"] and out[0]["method"] == "percentile"


# ---- evidence before grades (issue 14 item 7) ----------------------------------------------------------
DEFAULT = config_group("grades")


def test_default_minimum_is_the_strict_gates():
    assert DEFAULT["min_trades"] == config_group("gates", "strict")["min_trades"] == 30


@pytest.mark.parametrize("n_trades", [0, 1, 6, 29, None])
@pytest.mark.parametrize("sr", [5.0, 0.45, 0.30, 0.0, None])
def test_too_few_trades_is_insufficient_never_s(n_trades, sr):
    m = {"sharpe_per_trade": sr, "sharpe": sr, "n_trades": n_trades}
    for basis in ("per_trade", "annualised"):
        g = grade_metric(m, DEFAULT | {"basis": basis})
        assert g["grade"] == INSUFFICIENT == "N" and g["min_trades"] == 30
    assert [g["grade"] for g in grade_run([m], DEFAULT)] == ["N"]


def test_minimum_reached_grades_normally_and_is_configurable():
    m = {"sharpe_per_trade": 0.45, "n_trades": 30}
    assert grade_metric(m, DEFAULT)["grade"] == "S"
    assert grade_metric(m, DEFAULT | {"min_trades": 31})["grade"] == "N"
    assert grade_metric({**m, "n_trades": 6}, DEFAULT | {"min_trades": 5})["grade"] == "S"


def test_percentile_method_leaves_thin_models_out():
    """A 6-trade model with the run's best Sharpe is 'N', and does not push the others down the ranks."""
    cfg = DEFAULT | {"method": "percentile"}
    evidenced = [{"sharpe_per_trade": v, "n_trades": 200} for v in np.linspace(-0.1, 0.2, 20)]
    thin = {"sharpe_per_trade": 9.9, "n_trades": 6}
    alone = grade_run(evidenced, cfg)
    mixed = grade_run([thin, *evidenced], cfg)
    assert mixed[0]["grade"] == "N" and mixed[0]["percentile"] is None
    assert [g["grade"] for g in mixed[1:]] == [g["grade"] for g in alone]
    assert [g["percentile"] for g in mixed[1:]] == [g["percentile"] for g in alone]
    assert alone[-1]["grade"] == "S"


def test_evaluate_model_grades_a_thin_model_insufficient():
    """End to end through evaluate_model: after-cost trades below the minimum -> 'N' whatever the Sharpe."""
    from workflow_scripts.evaluation.backtest import evaluate_model
    from workflow_scripts.evaluation.costs import zero_costs

    rng = np.random.default_rng(0)
    n_bars, n_events, horizon = 600, 12, 5
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.005, n_bars)))
    pos = np.sort(rng.choice(np.arange(30, n_bars - horizon - 1), n_events, replace=False))
    label = np.full(n_events, 2)
    proba = np.tile([0.05, 0.05, 0.9], (n_events, 1))  # a "perfect" model on a handful of events
    kw = {
        "pos": pos,
        "side": "high",
        "proba": proba,
        "label": label,
        "barrier_logret": np.full(n_events, 0.01),
        "horizon": horizon,
        "close": close,
        "segment": (0, n_bars),
        "costs": zero_costs(),
        "rule": {"threshold": 0.5},
    }
    res = evaluate_model(**kw, grades=DEFAULT)
    assert 0 < res["counts"]["n_trades"] < DEFAULT["min_trades"]
    assert res["grade"]["grade"] == "N" and res["grade"]["n_trades"] == res["counts"]["n_trades"]
    lax = evaluate_model(**kw, grades=DEFAULT | {"min_trades": 1})["grade"]["grade"]
    assert lax != "N"  # the same model with the rule relaxed is graded by its Sharpe
