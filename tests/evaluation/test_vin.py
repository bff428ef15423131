import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_scripts.evaluation.vin import (
    GRADES,
    VinError,
    decode_vin,
    encode_vin,
    vin_fields_for_lgbm,
    vin_suffix,
)

EXAMPLE = {
    "type": "LGBM",
    "grade": "A-",
    "arch": {"num_leaves": 31, "max_depth": 5},
    "opt": {"learning_rate": 0.1, "lambda_l1": 1e-06},
    "env": {"side": "high", "kind": "breakout", "k": 1.5, "theta": 0.5, "window": 10},
    "date": "20260214",
    "suffix": "3F9A1C",
}


def test_example_reads_and_round_trips():
    code = encode_vin(EXAMPLE)
    assert code == "LGBM-AM-L31D5-E0p1A1em06-HBK1p5T0p5W10-20260214-3F9A1C"
    assert decode_vin(code) == EXAMPLE


def test_lgbm_params_and_suffix():
    params = {
        "num_leaves": 31,
        "max_depth": 5,
        "learning_rate": 0.1,
        "reg_alpha": 0.0,
        "objective": "multiclass",
    }
    target = {"side": "low", "type": "low_reversion", "k": 2.0, "theta": 1.0}
    a = vin_fields_for_lgbm(
        params,
        grade="B",
        target=target,
        window=20,
        date="20260101",
        best_iteration=87,
        identity={"symbol": "BTCUSDT", "target": "low_reversion_k2.0_th1.0", "window": 20},
    )
    b = dict(a, suffix=vin_suffix({"symbol": "ETHUSDT", "target": "low_reversion_k2.0_th1.0", "window": 20}))
    ca, cb = encode_vin(a), encode_vin(b)
    assert ca.startswith("LGBM-B-L31D5-E0p1A0p0N87-LRK2p0T1p0W20-20260101-")
    assert ca != cb and decode_vin(ca)["env"]["kind"] == "reversion"
    assert vin_suffix({"a": 1, "b": 2}) == vin_suffix({"b": 2, "a": 1})  # canonical, deterministic


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"grade": "A++"}, "grade"),
        ({"type": "lgbm"}, "type"),
        ({"date": "2026-02-14"}, "date"),
        ({"arch": {"num_trees": 3}}, "unknown"),
        ({"opt": {"learning_rate": float("nan")}}, "finite"),
        ({"env": {"side": "up", "kind": "breakout"}}, "side"),
    ],
)
def test_encode_refuses_bad_fields(bad, match):
    with pytest.raises(VinError, match=match):
        encode_vin(EXAMPLE | bad)


@pytest.mark.parametrize(
    "code",
    [
        "LGBM-A-L31-E0p1-HB-2026021",
        "LGBM-Q-X-X-HB-20260214",
        "LGBM-A-D5L31-X-HB-20260214",
        "LGBM-A-L3x1-X-HB-20260214",
        "LGBM-A-X-X-XB-20260214",
        "LGBM-A-X-X-HB-20260214-zz",
    ],
)
def test_decode_refuses_malformed(code):
    with pytest.raises(VinError):
        decode_vin(code)


numbers = st.one_of(st.integers(-(10**6), 10**9), st.floats(allow_nan=False, allow_infinity=False, width=64))


def tokens(names):
    return st.dictionaries(st.sampled_from(names), numbers, max_size=len(names))


@settings(max_examples=300, deadline=None)
@given(
    mtype=st.from_regex(r"[A-Z][A-Z0-9]{0,11}", fullmatch=True),
    grade=st.sampled_from(GRADES),
    arch=tokens(["num_leaves", "max_depth", "min_child_samples", "max_bin"]),
    opt=tokens(
        ["learning_rate", "lambda_l1", "lambda_l2", "feature_fraction", "bagging_fraction", "num_iterations"]
    ),
    env=tokens(["k", "theta", "window", "horizon"]),
    side=st.sampled_from(["high", "low"]),
    kind=st.sampled_from(["breakout", "reversion"]),
    date=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    suffix=st.one_of(st.none(), st.from_regex(r"[0-9A-F]{6}", fullmatch=True)),
)
def test_round_trip(mtype, grade, arch, opt, env, side, kind, date, suffix):
    fields = {
        "type": mtype,
        "grade": grade,
        "arch": arch,
        "opt": opt,
        "env": {"side": side, "kind": kind, **env},
        "date": date.strftime("%Y%m%d"),
    }
    if suffix is not None:
        fields["suffix"] = suffix
    code = encode_vin(fields)
    back = decode_vin(code)
    assert back == fields
    assert all(type(back[g][k]) is type(fields[g][k]) for g in ("arch", "opt", "env") for k in fields[g])
    assert encode_vin(back) == code


def test_insufficient_evidence_grade_rides_in_the_vin():
    """Issue 14 item 7: the 'insufficient evidence' grade fits the VIN grammar and decodes back."""
    from workflow_scripts.config.schema import config_group
    from workflow_scripts.evaluation.grades import INSUFFICIENT, grade_metric

    grade = grade_metric({"sharpe_per_trade": 0.9, "n_trades": 6}, config_group("grades"))["grade"]
    assert grade == INSUFFICIENT == "N" and INSUFFICIENT in GRADES
    code = encode_vin({**EXAMPLE, "grade": grade})
    assert code.split("-")[1] == "N" and decode_vin(code)["grade"] == "N"
    assert decode_vin(code) == {**EXAMPLE, "grade": "N"}
