"""job.each_side: a job over both sides of a (symbol, window) gives each side its own paths back."""

from __future__ import annotations

import pytest

from workflow_scripts.job import Job, each_side

SIDES = ["high", "low"]


def manifest(**inputs) -> Job:
    return Job.from_manifest(
        {
            "entry": "training.tune_stage4",
            "input": {
                "choice": [
                    "results/best_variant/BTCUSDT/w5/high.json",
                    "results/best_variant/BTCUSDT/w5/low.json",
                ],
                "previous": [
                    "results/tuning/stage3/BTCUSDT/w5/high.json",
                    "results/tuning/stage3/BTCUSDT/w5/low.json",
                ],
                "stage2": "results/tuning/stage2/w5.json",
                "features": "results/features/BTCUSDT.parquet",
                "encoder": [],
                "slot": [
                    "results/best_variant/BTCUSDT/w5/high.report.json",
                    "results/best_variant/BTCUSDT/w5/low.report.json",
                    "results/best_variant/BTCUSDT/w20/high.report.json",
                    "results/best_variant/BTCUSDT/w20/low.report.json",
                ],
                **inputs,
            },
            "output": {"folder": ["results/production/BTCUSDT/w5/high", "results/production/BTCUSDT/w5/low"]},
            "params": {"sides": SIDES, "spec": {"a": 1}},
            "wildcards": {"symbol": "BTCUSDT", "window": "5"},
            "threads": 2,
        }
    )


def test_each_side_gets_its_own_paths_and_shares_the_rest():
    high, low = each_side(manifest(), single=("choice", "previous", "folder"))
    assert high.input.choice == "results/best_variant/BTCUSDT/w5/high.json"
    assert low.input.previous == "results/tuning/stage3/BTCUSDT/w5/low.json"
    assert high.output.folder == "results/production/BTCUSDT/w5/high"
    # a list per (window, side) stays a list: the side's paths, in order
    assert low.input.slot == [
        "results/best_variant/BTCUSDT/w5/low.report.json",
        "results/best_variant/BTCUSDT/w20/low.report.json",
    ]
    # paths of no side, empty lists and params are shared
    for one in (high, low):
        assert one.input.stage2 == "results/tuning/stage2/w5.json" and one.input.encoder == []
        assert one.input.features == "results/features/BTCUSDT.parquet"
        assert one.params.spec == {"a": 1} and one.threads == 2 and one.entry == "training.tune_stage4"
    assert (high.wildcards.side, low.wildcards.side) == ("high", "low")
    assert high.wildcards.symbol == "BTCUSDT" and high.wildcards.window == "5"


def test_a_single_path_that_is_not_one_per_side_is_refused_by_name():
    job = manifest(
        choice=["results/best_variant/BTCUSDT/w5/high.json", "results/best_variant/BTCUSDT/w20/high.json"]
    )
    with pytest.raises(ValueError) as err:
        each_side(job, single=("choice",))
    assert str(err.value) == (
        "choice: expected one path of side 'high', got ['results/best_variant/BTCUSDT/w5/high.json', "
        "'results/best_variant/BTCUSDT/w20/high.json']"
    )
