"""Chronological splits: segments ordered, no label of one segment reaches into the next, purge + embargo
kept."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import hourly
from workflow_scripts.data.jobs import split_segments
from workflow_scripts.data.splits import TooShortError, chronological_split, required_bars, segment_mask
from workflow_scripts.job import Job


@pytest.mark.parametrize("n, horizon, embargo", [(1000, 2, 0), (1000, 50, 24), (5000, 10, 5)])
def test_segments_do_not_overlap_and_purge_horizon(n, horizon, embargo):
    split = chronological_split(hourly(n), horizon, 0.6, 0.2, embargo)
    positions = np.arange(n)
    label_end = positions + horizon
    masks = {s: segment_mask(split, s, positions, label_end) for s in ("train", "validation", "test")}
    assert (
        not (masks["train"] & masks["validation"]).any() and not (masks["validation"] & masks["test"]).any()
    )
    last_train_label = label_end[masks["train"]].max()
    first_val = positions[masks["validation"]].min()
    last_val_label = label_end[masks["validation"]].max()
    first_test = positions[masks["test"]].min()
    assert last_train_label < split["validation"]["lo"] <= first_val
    assert first_val - positions[masks["train"]].max() >= horizon + embargo  # purge gap >= label horizon
    assert last_val_label < first_test and first_test - positions[masks["validation"]].max() >= horizon
    assert split["purge"] == horizon and split["embargo"] == embargo


def test_too_short_data_is_refused():
    with pytest.raises(ValueError, match="too short"):
        chronological_split(hourly(60), 50, 0.6, 0.2, 0)


@pytest.mark.parametrize(
    "horizon, embargo, train, val", [(50, 24, 0.6, 0.2), (2, 24, 0.6, 0.2), (200, 0, 0.7, 0.15)]
)
def test_required_bars_is_the_fewest_from_which_every_count_splits(horizon, embargo, train, val):
    need = required_bars(horizon, train, val, embargo)
    with pytest.raises(
        TooShortError, match=rf"^too short for this window: {need - 1} bars, at least {need} needed"
    ):
        chronological_split(hourly(need - 1), horizon, train, val, embargo)
    for n in range(need, need + 500):
        chronological_split(hourly(n), horizon, train, val, embargo)


def test_a_coin_too_short_for_a_window_fails_its_split_job_naming_file_symbol_and_window(tmp_path):
    """Ingest no longer knows the windows (its own ingest.min_bars): the split of a window the coin is too
    short for stops with one line that says which coin, which window, how many bars it has and needs."""
    bars = tmp_path / "APEUSDT.parquet"
    pd.DataFrame({"timestamp": hourly(1000)}).to_parquet(bars)
    manifest = {
        "entry": "data.split_segments",
        "input": {"bars": str(bars)},
        "output": {"split": str(tmp_path / "w200.json")},
        "params": {"spec": {"horizon": 200, "train_frac": 0.6, "validation_frac": 0.2, "embargo_bars": 24}},
        "wildcards": {"symbol": "APEUSDT", "window": "200"},
        "threads": 1,
    }
    with pytest.raises(TooShortError) as err:
        split_segments(Job.from_manifest(manifest))
    assert str(err.value) == (
        f"{bars}: APEUSDT is too short for this window: 1000 bars, at least 1123 needed for a label horizon "
        "of 200 bars, embargo 24 and fractions 0.6/0.2/0.2 (the validation segment [624, 800) would hold no "
        "complete label); window 200 is not trainable"
    )
    assert not (tmp_path / "w200.json").exists()
    manifest["params"]["spec"]["horizon"] = 50
    split_segments(Job.from_manifest(manifest))
    assert json.loads((tmp_path / "w200.json").read_text())["bars"] == 1000
