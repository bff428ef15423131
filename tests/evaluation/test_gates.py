from pathlib import Path

import pytest
import yaml

from workflow_scripts.evaluation.gates import GateProfileError, judge, summarise

CONFIG = Path(__file__).resolve().parents[2] / "config" / "gates"
STRICT = yaml.safe_load((CONFIG / "strict.yaml").read_text())
EXPLORATORY = yaml.safe_load((CONFIG / "exploratory.yaml").read_text())
GOOD = {"n_trades": 120, "dsr": 0.99, "max_drawdown": 0.10, "total_return": 0.35}


def test_good_model_passes_and_records_profile():
    v = judge(GOOD, STRICT)
    assert v == {
        "passed": True,
        "reasons": [],
        "failed_gates": [],
        "profile": "strict",
        "profile_label": STRICT["label"],
    }


@pytest.mark.parametrize(
    "change, gate, text",
    [
        ({"n_trades": 12}, "min_trades", "too few trades after costs: 12 < 30"),
        ({"dsr": 0.80}, "min_dsr", "deflated Sharpe probability 0.800 is not above 0.950"),
        ({"dsr": None}, "min_dsr", "deflated Sharpe ratio not available"),
        ({"dsr": float("nan")}, "min_dsr", "deflated Sharpe ratio not available"),
        ({"max_drawdown": 0.40}, "max_drawdown", "max drawdown 40.0% exceeds the limit 25.0%"),
        ({"total_return": -0.02}, "min_net_return", "net return after costs -2.00% is not above +0.00%"),
        ({"total_return": 0.0}, "min_net_return", "net return after costs +0.00% is not above +0.00%"),
    ],
)
def test_each_gate_fails_with_its_reason(change, gate, text):
    v = judge(GOOD | change, STRICT)
    assert not v["passed"] and v["failed_gates"] == [gate]
    assert len(v["reasons"]) == 1 and v["reasons"][0].startswith(text)


def test_all_reasons_at_once_and_exploratory_is_looser_and_labelled():
    bad = {"n_trades": 15, "dsr": 0.6, "max_drawdown": 0.3, "total_return": 0.05}
    assert judge(bad, STRICT)["failed_gates"] == ["min_trades", "min_dsr", "max_drawdown"]
    v = judge(bad, EXPLORATORY)
    assert v["passed"] and v["profile"] == "exploratory" and "EXPLORATORY" in v["profile_label"]


def test_profile_is_validated():
    with pytest.raises(GateProfileError, match="missing"):
        judge(GOOD, {"name": "x"})


def test_summary_when_nothing_passes_is_plain():
    verdicts = [judge(GOOD | {"n_trades": 3}, STRICT), judge(GOOD | {"dsr": 0.1, "n_trades": 1}, STRICT)]
    s = summarise(verdicts)
    assert s["n_passed"] == 0 and s["n_failed"] == 2
    assert s["message"] == (
        "No model passed the quality gates (strict): 0 of 2 evaluated models passed. Nothing to promote."
    )
    assert s["failure_reasons"] == {"min_dsr": 1, "min_trades": 2}
    assert summarise([judge(GOOD, STRICT)] + verdicts)["message"] == (
        "1 of 3 evaluated models passed the quality gates (strict)."
    )
    assert summarise([])["message"] == "No models were evaluated."
