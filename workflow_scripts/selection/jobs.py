"""Entries of rules/selection.smk: screen_features, select_features, aggregate_selection,
aggregate_selection_overall."""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.data.splits import chronological_split
from workflow_scripts.selection.feature_screening import (
    screen_features as screen_feature_table,
)
from workflow_scripts.selection.feature_screening import (
    screening_markdown,
    screening_summary,
    segment_positions,
    training_rows,
)
from workflow_scripts.selection.feature_selection import (
    aggregate_selection as aggregate_selection_table,
)
from workflow_scripts.selection.feature_selection import (
    feature_inputs,
    load_columns,
    plan_window,
    plot_importance,
    select_window,
    selection_markdown,
    selection_summary,
)


def screen_features(job) -> None:
    """One coin's cross-coin feature table -> kept list + per-feature report.

    Statistics use the training segment's bars only: params.split holds the segment shares, and the horizon is
    0 because screening reads features, never labels (a feature at bar i uses bars <= i, all inside the
    segment). So no window enters screening, and adding a window does not rescreen.
    """
    spec = job.params.spec
    features = pd.read_parquet(job.input.features)
    s = job.params.split
    split = chronological_split(
        features["timestamp"], 0, s["train_frac"], s["validation_frac"], s["embargo_bars"]
    )
    train = training_rows(features, split)
    kept, report = screen_feature_table(train[feature_inputs(features.columns)], spec)
    summary = screening_summary(report, spec)
    artifacts.write_json(job.output.json, summary)
    artifacts.write_text(job.output.csv, report.to_csv(index=False))
    artifacts.write_text(
        job.output.markdown, screening_markdown(report, summary, f"Feature screening: {job.wildcards.symbol}")
    )


def select_features(job) -> None:
    """Every variant of one (symbol, window) -> its top features by gain."""
    spec = job.params.spec
    kept = artifacts.read_json(job.input.screening)["kept"]
    split = artifacts.read_json(job.input.split)
    targets = pd.read_parquet(job.input.targets)
    train = segment_positions(split, "train", len(targets))
    union, variants = plan_window(targets, train, job.params.targets, spec, split["horizon"])
    X = load_columns(job.input.features, kept).to_numpy("float32")[union]
    tables = select_window(X, kept, union, variants, spec)
    rows = [t.assign(target=tid) for tid, t in tables.items()]
    out = pd.concat(rows, ignore_index=True)[["target", "feature", "gain", "norm_gain"]]
    artifacts.write_parquet(job.output.table, out)


def aggregate_selection(job) -> None:
    """Per-variant top lists of one symbol (or of all symbols) -> selected features, table and plot."""
    spec, per_window, title = job.params.spec, list(job.input.per_window), job.params.title
    frames = [pd.read_parquet(p).assign(source=p) for p in per_window]
    stacked = pd.concat(frames, ignore_index=True)
    per_variant = [g for _, g in stacked.groupby(["source", "target"], sort=True)]
    n_variants = sum(pd.read_parquet(p)["target"].nunique() for p in per_window)
    table = aggregate_selection_table(per_variant, spec["keep_min"], spec["keep_max"], spec["score_coverage"])
    artifacts.write_json(job.output.json, selection_summary(table, spec, n_variants))
    artifacts.write_text(job.output.markdown, selection_markdown(table, f"Feature selection: {title}"))
    plot_importance(job.output.plot, table, title=f"Feature selection: {title}")


def aggregate_selection_overall(job) -> None:
    """The same aggregation over every symbol and window."""
    aggregate_selection(job)
