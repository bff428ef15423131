"""Seed 004's trial codes: the seed's own example decodes as the seed says, encode/decode round trip
(property-based), canonical form, collision suffixes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_scripts.agents.trial_code import (
    GRADES,
    TrialCodeError,
    assign_codes,
    decode,
    encode,
)
from workflow_scripts.config.schema import config_group

SEED_EXAMPLE = "PPO-A-N1024B4K-L2E6G98-LB5TD20-20260214"


def test_seed_004_example_decodes_as_documented():
    assert decode(SEED_EXAMPLE) == {
        "type": "PPO",
        "grade": "A",
        "net_width": 1024,
        "batch_size": 4000,
        "learning_rate": 2e-6,
        "gamma": 0.98,
        "lookback": 5,
        "time_decay": 0.20,
        "date": "20260214",
    }
    assert encode(decode(SEED_EXAMPLE)) == SEED_EXAMPLE


def test_grade_letters_are_the_workflows_grades_and_insufficient_evidence():
    grades = config_group("grades")
    assert set(GRADES) == {g for g, _ in grades["table"]} | {grades["fail_grade"], "N"}


counts = st.integers(1, 10**6)
learning_rates = st.builds(lambda m, e: float(f"{m}e-{e}"), st.integers(1, 999), st.integers(1, 12))
gammas = st.builds(lambda d: float(f"0.{d}"), st.integers(1, 99999).map(str).filter(lambda s: s[-1] != "0"))
dates = st.dates(min_value=__import__("datetime").date(2000, 1, 1)).map(lambda d: d.strftime("%Y%m%d"))
fields = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["PPO", "SAC", "TD3", "DDPG"]),
        "grade": st.sampled_from(GRADES),
        "net_width": counts,
        "batch_size": counts,
        "learning_rate": learning_rates.filter(lambda x: 0 < x <= 1),
        "gamma": gammas.filter(lambda g: 0 < g < 1),
        "lookback": st.integers(1, 10**4),
        "time_decay": st.integers(0, 10**4).map(lambda k: k / 100),
        "date": dates,
    }
)


@settings(max_examples=300, deadline=None)
@given(fields, st.one_of(st.none(), st.text("0123456789ABCDEF", min_size=6, max_size=6)))
def test_encode_decode_round_trip(values, suffix):
    if suffix is not None:
        values = values | {"suffix": suffix}
    code = encode(values)
    assert decode(code) == values
    assert encode(decode(code)) == code


@pytest.mark.parametrize(
    "code",
    [
        "PPO-A-N1024B4000-L2E6G98-LB5TD20-20260214",  # 4000 is spelled 4K
        "PPO-A-N1024B4K-L20E7G98-LB5TD20-20260214",  # mantissa with a trailing zero
        "PPO-A-N1024B4K-L2E6G980-LB5TD20-20260214",  # gamma with a trailing zero
        "PPO-A+-N1024B4K-L2E6G98-LB5TD20-20260214",  # not a seed 004 grade
        "PPO-A-N1024B4K-L2E6G98-LB5TD20-20261301",  # no 13th month
        "PPO-A-N1024B4K-L2E6G98-LB5TD20-20260214-abc123",  # suffix is upper-case hex
    ],
)
def test_non_canonical_or_malformed_codes_are_rejected(code):
    with pytest.raises(TrialCodeError):
        decode(code)


def test_unencodable_values_are_rejected():
    base = decode(SEED_EXAMPLE)
    for bad in ({"gamma": 1.0}, {"time_decay": 0.125}, {"learning_rate": 2.0}, {"net_width": 0}):
        with pytest.raises(TrialCodeError):
            encode(base | bad)


def test_collisions_get_a_suffix_and_the_first_code_stays_plain():
    same = decode(SEED_EXAMPLE)
    codes = assign_codes([(same, {"trial": 0}), (same, {"trial": 1}), (same | {"grade": "B"}, {"trial": 2})])
    assert codes[0] == SEED_EXAMPLE
    assert codes[1].startswith(SEED_EXAMPLE + "-") and len(codes[1]) == len(SEED_EXAMPLE) + 7
    assert codes[2] == SEED_EXAMPLE.replace("-A-", "-B-")
    assert decode(codes[1])["suffix"] == codes[1][-6:]
    with pytest.raises(TrialCodeError, match="same identity"):
        assign_codes([(same, {"trial": 0}), (same, {"trial": 1}), (same, {"trial": 1})])
