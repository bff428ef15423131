"""Entries of rules/features.smk: build_features (one coin's own table), add_cross_coin_features."""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.features import build_features as build_feature_table
from workflow_scripts.features import cross_coin_table


def build_features(job) -> None:
    bars = pd.read_parquet(job.input.bars)
    artifacts.write_parquet(job.output.features, build_feature_table(bars, job.params.spec))


def add_cross_coin_features(job) -> None:
    """Inputs: `own` (this coin's base table) and one base table per reference coin (the basket without the
    coin, or every other coin in all_pairs mode), named by its symbol; params.spec: features.cross_coin."""
    inputs = dict(vars(job.input))
    own = pd.read_parquet(inputs.pop("own"))
    others = {symbol: pd.read_parquet(path) for symbol, path in sorted(inputs.items())}
    table = cross_coin_table(job.wildcards.symbol, own, others, job.params.spec)
    artifacts.write_parquet(job.output.features, table)
