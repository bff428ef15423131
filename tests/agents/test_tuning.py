"""Agent studies: the trial budget binds and resumes, the sampler is deterministic, every trial is scored on
validation only and carries a decodable seed 004 trial code."""

from __future__ import annotations

import numpy as np

from tests.agents.conftest import AGENTS, COSTS, random_market
from workflow_scripts.agents import trial_code
from workflow_scripts.agents.tuning import NO_SCORE, StudySetup, run_agent_study
from workflow_scripts.config.schema import config_group

SPACE = {
    "net_width": {"choices": [8, 16]},
    "batch_size": {"choices": [16, 32]},
    "learning_rate": {"choices": [1e-4, 3e-4]},
    "gamma": {"choices": [0.95, 0.99]},
    "lookback": {"choices": [1, 2]},
    "time_decay": {"choices": [0.0, 0.2]},
}


def _setup(market, **kw):
    fixed = {
        "kind": "ppo",
        "agent": AGENTS["agent"] | {"total_timesteps": 128, "n_steps": 64},
        "env": AGENTS["env"] | {"episode_bars": 64},
        "seed": 3,
        "objective": AGENTS["study"]["objective"],
        "min_trades": 0,
        "date": "20260214",
        "grades": config_group("grades"),
    }
    return StudySetup(data=market, train=(30, 250), validation=(250, 330), costs=COSTS, **(fixed | kw))


def _study(**over):
    return AGENTS["study"] | over


def test_study_budget_binds_resumes_and_codes_decode(tmp_path):
    market = random_market()
    setup = _setup(market)
    journal = tmp_path / "ppo.journal"
    first = run_agent_study(
        setup, journal_path=journal, study_name="s", space=SPACE, study=_study(trials=3, seed=1)
    )
    assert first["n_trials"] == 3 and first["scored_on"] == "validation"
    again = run_agent_study(
        setup, journal_path=journal, study_name="s", space=SPACE, study=_study(trials=3, seed=1)
    )
    assert again["trials"] == first["trials"]  # budget spent: nothing new runs
    more = run_agent_study(
        setup, journal_path=journal, study_name="s", space=SPACE, study=_study(trials=4, seed=1)
    )
    assert more["n_trials"] == 4 and more["trials"][:3] == first["trials"]
    for t in more["trials"]:
        fields = trial_code.decode(t["code"])
        assert fields["type"] == "PPO" and fields["date"] == "20260214"
        assert {k: fields[k] for k in t["params"]} == t["params"]
        assert fields["grade"] == t["validation"]["grade"]
    assert len({t["code"] for t in more["trials"]}) == 4
    assert more["best"]["value"] == max(t["value"] for t in more["trials"])
    assert len(more["trial_sharpes"]) == 4


def test_same_seed_same_trials_in_a_fresh_journal(tmp_path):
    market = random_market()
    runs = [
        run_agent_study(
            _setup(market),
            journal_path=tmp_path / f"{i}.journal",
            study_name="s",
            space=SPACE,
            study=_study(trials=2, seed=7),
        )
        for i in range(2)
    ]
    assert [(t["params"], t["value"]) for t in runs[0]["trials"]] == [
        (t["params"], t["value"]) for t in runs[1]["trials"]
    ]


def test_validation_only_test_bars_can_change_freely(tmp_path):
    market = random_market()
    close = market.close.copy()
    close[330:] *= np.exp(np.random.default_rng(1).normal(0, 0.3, len(close) - 330))
    changed = type(market)(market.features, close, market.sigma)
    a = run_agent_study(
        _setup(market),
        journal_path=tmp_path / "a.journal",
        study_name="s",
        space=SPACE,
        study=_study(trials=1, seed=2),
    )
    b = run_agent_study(
        _setup(changed),
        journal_path=tmp_path / "b.journal",
        study_name="s",
        space=SPACE,
        study=_study(trials=1, seed=2),
    )
    assert a["trials"][0]["value"] == b["trials"][0]["value"]


def test_a_policy_with_too_few_trades_gets_no_score(tmp_path):
    setup = _setup(random_market(), min_trades=10_000)
    out = run_agent_study(
        setup, journal_path=tmp_path / "j", study_name="s", space=SPACE, study=_study(trials=1)
    )
    assert out["trials"][0]["value"] == NO_SCORE and out["best"] is None


def test_grades_and_codes_follow_the_evidence_rule(tmp_path):
    """Below grades.min_trades after-cost validation trades a trial's grade is N (insufficient evidence),
    in its validation record and its trial code, whatever its Sharpe; at or above it the table grade."""
    from workflow_scripts.evaluation.grades import INSUFFICIENT, grade_absolute

    market, grades = random_market(), config_group("grades")
    runs = {}
    for name, minimum in (("thin", 10_000), ("enough", 1)):
        runs[name] = run_agent_study(
            _setup(market, grades=grades | {"min_trades": minimum}),
            journal_path=tmp_path / f"{name}.journal",
            study_name="s",
            space=SPACE,
            study=_study(trials=3, seed=1),
        )["trials"]
    # the same trials (same seed and sampler), judged by two evidence minima
    assert [t["validation"] for t in runs["thin"]] != [t["validation"] for t in runs["enough"]]
    for thin, enough in zip(runs["thin"], runs["enough"]):
        assert thin["validation"]["n_trades"] == enough["validation"]["n_trades"]
        assert thin["validation"]["grade"] == INSUFFICIENT
        assert trial_code.decode(thin["code"])["grade"] == INSUFFICIENT
        expected = (
            grade_absolute(enough["validation"]["sharpe_per_trade"], grades["table"], grades["fail_grade"])
            if enough["validation"]["n_trades"] >= 1
            else INSUFFICIENT
        )
        assert enough["validation"]["grade"] == expected
        assert trial_code.decode(enough["code"])["grade"] == expected
    assert any(t["validation"]["grade"] != INSUFFICIENT for t in runs["enough"])
