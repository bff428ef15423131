"""Chronological splits: segments ordered, no label of one segment reaches into the next, purge + embargo
kept."""

import numpy as np
import pytest

from tests.conftest import hourly
from workflow_scripts.data.splits import chronological_split, segment_mask


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
