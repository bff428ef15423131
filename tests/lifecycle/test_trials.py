"""training/trials.py: the DSR trial count of a slot equals the number of candidates that competed for it."""

from __future__ import annotations

import pytest

from workflow_scripts.training.trials import ensemble_candidates, slot_of_folders, slot_trials


def _choice(window, trained, skipped=1, side="high"):
    variants = [
        {"target": f"{side}_t{i}", "status": "trained", "sharpe_per_trade": 0.1 * i} for i in range(trained)
    ] + [{"target": f"{side}_s{i}", "status": "skipped"} for i in range(skipped)]
    return {"symbol": "BTCUSDT", "window": window, "side": side, "variants_ranked": variants}


def test_slot_count_is_every_candidate_of_every_window():
    choices = {5: _choice(5, 4), 20: _choice(20, 3), 60: _choice(60, 2)}
    tuning = {
        5: {
            "stage2": {"finished_trials": 10},
            "stage3": {"finished_trials": 6},
            "stage4": {"finished_trials": 3},
        },
        20: {
            "stage2": {"finished_trials": 8},
            "stage3": {"finished_trials": 5},
            "stage4": {"finished_trials": 2},
        },
        60: {"stage2": {"finished_trials": 7}, "stage3": {"finished_trials": 4}},
    }
    out = slot_trials(choices, tuning, ensemble_candidates({"enabled": True, "kind": "auto"}))
    # candidates, listed: 4 + 3 + 2 trained variants, 10 + 8 + 7 stage-2, 6 + 5 + 4 stage-3, 3 + 2 + 0
    # stage-4 trials, and the average and stacker ensembles
    candidates = [f"v{i}" for i in range(9)] + [f"s2_{i}" for i in range(25)] + [f"s3_{i}" for i in range(15)]
    candidates += [f"s4_{i}" for i in range(5)] + ["average", "stacker"]
    assert out["n_trials"] == len(candidates) == 56
    assert out["by_source"] == {
        "stage1_variants": 9,
        "stage2": 25,
        "stage3": 15,
        "stage4": 5,
        "ensembles": 2,
    }
    assert out["by_window"][60]["stage4"] == 0 and out["slot"] == "BTCUSDT/high"
    assert sorted(out["trial_sharpes"]) == pytest.approx(
        sorted([0.1 * i for n in (4, 3, 2) for i in range(n)])
    )


def test_ensemble_candidates_and_folder_count():
    assert ensemble_candidates(None) == 0 and ensemble_candidates({"enabled": False, "kind": "auto"}) == 0
    assert ensemble_candidates({"enabled": True, "kind": "stacker"}) == 1
    assert slot_of_folders([{"dsr_trials": {"n_trials": 56}}, {"dsr_trials": {"n_trials": 56}}]) == 56


def test_slot_must_be_one_symbol_and_side():
    with pytest.raises(ValueError, match="more than one"):
        slot_trials({5: _choice(5, 2), 20: _choice(20, 2, side="low")}, {5: {}, 20: {}})
    with pytest.raises(ValueError, match="windows"):
        slot_trials({5: _choice(5, 2)}, {20: {}})
