"""No look-ahead, end to end: change every bar after a cut time T in the raw data of both tiny coins (values
only: the bar count and the timestamps stay, so split boundaries do not move) and run the real workflow on the
copy. Everything known at or before T must come out identical to the uninterrupted run on the original bars.

Also: the purged walk-forward folds and the train/validation/test segments never let a training label span
reach a validation span, on the real targets tables.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.reliability.conftest import RUN, SYMBOLS, output_text, sandbox, smk
from workflow_scripts.data import purged_walk_forward as pwf
from workflow_scripts.data import splits as splits_mod

WINDOWS = (5, 20)
# Screening and selection decisions (rules screen_features, select_features, aggregate_selection*): fitted on
# training rows only, so on data up to T.
SELECTION_FILES = (
    [f"results/screening/{s}/{f}" for s in SYMBOLS for f in ("screening.json", "report.csv")]
    + [f"results/selection/{s}/w{w}.parquet" for s in SYMBOLS for w in WINDOWS]
    + [f"results/selection/{s}/selected.json" for s in SYMBOLS]
    + ["results/selection/overall.json"]
)
TRAIN_FRAC = 0.6  # config/split/default.yaml: the cut is put after the training segment, inside validation


def _alter_after(raw: pd.DataFrame, t_cut: pd.Timestamp, seed: int) -> pd.DataFrame:
    """Every bar after T gets other (still valid) prices and volumes; rows and timestamps unchanged."""
    out = raw.copy()
    after = (out["timestamp"] > t_cut).to_numpy()
    rng = np.random.default_rng(seed)
    factor = np.exp(np.cumsum(rng.normal(0, 0.01, after.sum())))  # a different random walk after T
    for c in ("open", "high", "low", "close"):
        out.loc[after, c] = out.loc[after, c].to_numpy() * factor
    out.loc[after, "volume"] = out.loc[after, "volume"].to_numpy() * rng.uniform(0.2, 3.0, after.sum())
    return out


@pytest.fixture(scope="module")
def altered_run(clean_run, tmp_path_factory):
    wd = sandbox(tmp_path_factory.mktemp("lookahead") / "wf")
    bars = pd.read_parquet(clean_run / "results" / "ingest" / "BTCUSDT.parquet")
    pos_t = int(len(bars) * (TRAIN_FRAC + 0.05))  # T: a bar a little inside the validation segment
    t_cut = bars["timestamp"].iloc[pos_t]
    for i, sym in enumerate(SYMBOLS):
        path = wd / "data" / "raw" / f"{sym}_1h.parquet"
        _alter_after(pd.read_parquet(path), t_cut, seed=i).to_parquet(path, index=False)
    targets = [f"results/features/{s}.parquet" for s in SYMBOLS]
    targets += [f"results/targets/{s}/w{w}.parquet" for s in SYMBOLS for w in WINDOWS]
    targets += [f"results/splits/{s}/w{w}.json" for s in SYMBOLS for w in WINDOWS]
    targets += SELECTION_FILES
    proc = smk(wd, *targets, config=RUN, timeout=1200)
    assert proc.returncode == 0, output_text(proc)[-3000:]
    return wd, t_cut


def _frames(a: pd.DataFrame, b: pd.DataFrame, rows: np.ndarray, what: str) -> None:
    assert list(a.columns) == list(b.columns), what
    pd.testing.assert_frame_equal(
        a.loc[rows].reset_index(drop=True), b.loc[rows].reset_index(drop=True), check_exact=True, obj=what
    )


def _changed_after(a: pd.DataFrame, b: pd.DataFrame, rows: np.ndarray) -> bool:
    x, y = a.loc[rows].drop(columns="timestamp"), b.loc[rows].drop(columns="timestamp")
    return not x.equals(y)


pytestmark = pytest.mark.slow


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("table", ["features/base", "features"])
def test_features_known_at_t_do_not_change_when_the_future_changes(clean_run, altered_run, symbol, table):
    wd, t_cut = altered_run
    a = pd.read_parquet(clean_run / "results" / table / f"{symbol}.parquet")
    b = pd.read_parquet(wd / "results" / table / f"{symbol}.parquet")
    assert a["timestamp"].equals(b["timestamp"])
    upto = (a["timestamp"] <= t_cut).to_numpy()
    assert upto.sum() > 1000 and (~upto).sum() > 1000
    _frames(a, b, upto, f"{table}/{symbol} rows <= {t_cut}")
    assert _changed_after(a, b, ~upto), "the alteration after T did not reach the features: the test is void"
    if table == "features":
        other = next(s for s in SYMBOLS if s != symbol)
        assert any(c.startswith(f"{other}__") for c in a.columns), "no cross-coin columns to check"


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("window", WINDOWS)
def test_labels_ending_by_t_and_splits_do_not_change(clean_run, altered_run, symbol, window):
    wd, t_cut = altered_run
    a = pd.read_parquet(clean_run / "results" / "targets" / symbol / f"w{window}.parquet")
    b = pd.read_parquet(wd / "results" / "targets" / symbol / f"w{window}.parquet")
    assert a["timestamp"].equals(b["timestamp"]) and a["label_end"].equals(b["label_end"])
    pos_t = int(np.flatnonzero((a["timestamp"] <= t_cut).to_numpy())[-1])
    known = (a["label_end"] <= pos_t).to_numpy()
    assert known.sum() > 1000
    _frames(a, b, known, f"targets {symbol} w{window}: labels ending at or before T")
    assert _changed_after(a, b, ~known), "the alteration after T did not reach the labels: the test is void"
    sa = (clean_run / "results" / "splits" / symbol / f"w{window}.json").read_text()
    sb = (wd / "results" / "splits" / symbol / f"w{window}.json").read_text()
    assert sa == sb, "split boundaries moved although only values changed"


def test_screening_and_selection_decisions_of_the_workflow_do_not_change(clean_run, altered_run):
    """The workflow's own screening reports and selected feature lists (training segment only, which ends
    before T) are byte-identical, while the selection's training inputs after T did change (see the tests
    above)."""
    wd, _ = altered_run
    differ = [f for f in SELECTION_FILES if (clean_run / f).read_bytes() != (wd / f).read_bytes()]
    assert differ == [], f"decisions changed when only bars after T changed: {differ}"
    kept = json.loads((wd / "results" / "selection" / "BTCUSDT" / "selected.json").read_text())["features"]
    assert len(kept) > 10


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_training_segment_fits_do_not_change_screening_and_encoder(clean_run, altered_run, symbol):
    """Screening (workflow_scripts.selection.feature_screening) and the shared PCA encoder
    (workflow_scripts.models.shared_encoder) fitted on the training segment (which ends before T), called
    directly on both runs' real tables, agree exactly: the encoder's mean and scale (its scaler) and
    components, and screening's kept list and report."""
    from workflow_scripts.config.schema import config_group
    from workflow_scripts.models import shared_encoder
    from workflow_scripts.selection import feature_screening

    wd, t_cut = altered_run
    split = splits_mod_json(clean_run, symbol, 20)
    t_hi_ts = pd.Timestamp(split["train"]["end"])
    assert t_hi_ts < t_cut
    tables = {}
    for name, base in (("clean", clean_run), ("altered", wd)):
        feats = pd.read_parquet(base / "results" / "features" / f"{symbol}.parquet")
        X = feature_screening.training_rows(feats, split).drop(columns="timestamp")
        kept, report = feature_screening.screen_features(X, config_group("screening"))
        own = {s: pd.read_parquet(base / "results" / "features" / "base" / f"{s}.parquet") for s in SYMBOLS}
        lo, hi = shared_encoder.training_range(
            [splits_mod_json(base, s, w) for s in SYMBOLS for w in WINDOWS]
        )
        enc = shared_encoder.fit_pca_encoder(
            shared_encoder.training_rows(own, {s: (lo, hi) for s in SYMBOLS}), n_components=5
        )
        tables[name] = (kept, report, enc)
    (k1, r1, e1), (k2, r2, e2) = tables["clean"], tables["altered"]
    assert k1 == k2
    pd.testing.assert_frame_equal(r1, r2, check_exact=True)
    assert e1.columns == e2.columns
    for field in ("mean", "scale", "components", "explained_variance_ratio"):
        np.testing.assert_array_equal(getattr(e1, field), getattr(e2, field), err_msg=field)


def splits_mod_json(base, symbol, window) -> dict:
    import json

    return json.loads((base / "results" / "splits" / symbol / f"w{window}.json").read_text())


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("window", WINDOWS)
def test_segments_and_purged_folds_never_let_a_training_label_reach_validation(clean_run, symbol, window):
    """On the real targets tables: (a) the rows stage 1 trains on (splits.segment_mask) have labels ending
    before the validation segment starts; (b) purged walk-forward folds over the training rows of every target
    keep every training label span [position, label_end] clear of the validation span (+ embargo), checked
    here by brute force rather than by the module's own check."""
    t = pd.read_parquet(clean_run / "results" / "targets" / symbol / f"w{window}.parquet")
    split = splits_mod_json(clean_run, symbol, window)
    pos = np.arange(len(t))
    end = t["label_end"].to_numpy()
    tr = splits_mod.segment_mask(split, "train", pos, end)
    va = splits_mod.segment_mask(split, "validation", pos, end)
    te = splits_mod.segment_mask(split, "test", pos, end)
    assert end[tr].max() < pos[va].min() and end[va].max() < pos[te].min()
    assert pos[va].min() - end[tr].max() > split["embargo"]
    target_cols = [c for c in t.columns if c.startswith(("high_", "low_"))]
    embargo = 24
    checked = 0
    for col in target_cols:
        rows = np.flatnonzero(tr & np.isin(t[col].to_numpy(), (0, 1, 2)))
        if len(rows) < 200:
            continue
        for mode in ("expanding", "rolling"):
            folds = pwf.purged_walk_forward(rows, end[rows], n_folds=4, mode=mode, embargo=embargo)
            for train_idx, val_idx in folds:
                v_lo, v_hi = rows[val_idx].min(), end[rows][val_idx].max()
                t_lo, t_hi = rows[train_idx], end[rows][train_idx]
                # brute force over every pair of bars: no training span within `embargo` bars of the fold
                overlap = (t_lo <= v_hi + embargo) & (t_hi + embargo >= v_lo)
                assert not overlap.any(), (
                    f"{col} {mode}: {int(overlap.sum())} training spans reach validation"
                )
                assert not set(rows[train_idx]) & set(rows[val_idx])
            checked += 1
    assert checked >= len(target_cols) // 2
