"""Entries of rules/features.smk: build_features (one coin's own table), add_cross_coin_features."""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.features import add_cross_coin
from workflow_scripts.features import build_features as build_feature_table


def build_features(job) -> None:
    bars = pd.read_parquet(job.input.bars)
    artifacts.write_parquet(job.output.features, build_feature_table(bars, job.params.spec))


def add_cross_coin_features(job) -> None:
    """Inputs: `own` (this coin's table) and one input per other universe coin, named by its symbol."""
    inputs = vars(job.input)
    own = pd.read_parquet(inputs.pop("own"))
    others = {symbol: pd.read_parquet(path) for symbol, path in sorted(inputs.items())}
    artifacts.write_parquet(job.output.features, add_cross_coin(own, others))
