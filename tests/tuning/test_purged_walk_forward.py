"""The splitter's invariant, stated independently of its implementation, over random inputs."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from workflow_scripts.data.purged_walk_forward import check_purged_folds, purged_walk_forward


@st.composite
def labelled_rows(draw):
    n = draw(st.integers(2, 400))
    steps = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))  # gaps between labelled bars
    positions = np.cumsum(steps) + draw(st.integers(0, 50))
    horizons = np.array(draw(st.lists(st.integers(0, 60), min_size=n, max_size=n)))
    return positions, positions + horizons


def _overlaps(a_lo, a_hi, b_lo, b_hi):
    return a_lo <= b_hi and b_lo <= a_hi


@settings(max_examples=300, deadline=None)
@given(
    rows=labelled_rows(),
    n_folds=st.integers(1, 7),
    mode=st.sampled_from(["expanding", "rolling"]),
    embargo=st.integers(0, 30),
    min_train=st.integers(1, 20),
)
def test_no_training_label_span_touches_validation(rows, n_folds, mode, embargo, min_train):
    positions, label_end = rows
    try:
        folds = purged_walk_forward(positions, label_end, n_folds, mode, embargo, min_train)
    except ValueError:
        assume(False)
    assert len(folds) == n_folds
    prev_val_end = -1
    for train_idx, val_idx in folds:
        assert len(val_idx) > 0 and len(train_idx) >= min_train
        v_lo, v_hi = positions[val_idx].min(), label_end[val_idx].max()
        for i in train_idx:
            # purge: label span does not overlap the validation span
            assert not _overlaps(positions[i], label_end[i], v_lo, v_hi)
            # embargo: nothing trained within `embargo` bars after the fold (nor before it in walk-forward)
            assert not (v_hi < positions[i] <= v_hi + embargo)
            assert label_end[i] + embargo < v_lo
        # chronological: validation blocks follow each other, training precedes validation
        assert val_idx.min() > prev_val_end
        assert train_idx.max() < val_idx.min()
        prev_val_end = val_idx.max()
        assert len(np.intersect1d(train_idx, val_idx)) == 0
    check_purged_folds(positions, label_end, folds, embargo)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(60, 600),
    horizon=st.integers(0, 10),
    n_folds=st.integers(1, 6),
    embargo=st.integers(0, 10),
    mode=st.sampled_from(["expanding", "rolling"]),
)
def test_feasible_inputs_give_all_folds(n, horizon, n_folds, embargo, mode):
    # Contiguous bars, fixed horizon: feasible whenever the first block outlasts purge + embargo.
    positions = np.arange(n)
    first_block = n - n_folds * (n // (n_folds + 1))
    assume(first_block > horizon + embargo + 1)
    folds = purged_walk_forward(positions, positions + horizon, n_folds, mode, embargo)
    assert len(folds) == n_folds
    assert all(len(t) > 0 and len(v) > 0 for t, v in folds)
    sizes = {len(v) for _, v in folds}
    assert sizes == {n // (n_folds + 1)}


def test_expanding_grows_and_rolling_keeps_window():
    pos = np.arange(600)
    exp = purged_walk_forward(pos, pos + 5, 5, "expanding", embargo=3)
    roll = purged_walk_forward(pos, pos + 5, 5, "rolling", embargo=3)
    assert [len(t) for t, _ in exp] == sorted(len(t) for t, _ in exp)
    assert exp[0][0][0] == 0 and exp[-1][0][0] == 0
    assert len({len(t) for t, _ in roll}) == 1  # same history per fold
    assert roll[-1][0][0] > 0
    # purge + embargo: last training row ends horizon + embargo bars before validation
    train, val = exp[2]
    assert pos[train[-1]] + 5 + 3 < pos[val[0]]
    assert pos[train[-1]] + 5 + 3 == pos[val[0]] - 1


def test_checker_catches_a_leak():
    pos = np.arange(100)
    end = pos + 10
    leaky = [(np.arange(0, 50), np.arange(50, 60))]
    with pytest.raises(AssertionError):
        check_purged_folds(pos, end, leaky)
    clean = [(np.arange(0, 40), np.arange(50, 60))]
    check_purged_folds(pos, end, clean)
    with pytest.raises(AssertionError):
        check_purged_folds(pos, end, clean, embargo=5)


def test_infeasible_and_bad_inputs_raise():
    pos = np.arange(20)
    with pytest.raises(ValueError):
        purged_walk_forward(pos, pos + 30, 3)  # horizon longer than history
    with pytest.raises(ValueError):
        purged_walk_forward(pos[::-1], pos[::-1], 2)
    with pytest.raises(ValueError):
        purged_walk_forward(pos, pos - 1, 2)
    with pytest.raises(ValueError):
        purged_walk_forward(np.arange(3), np.arange(3), 5)
