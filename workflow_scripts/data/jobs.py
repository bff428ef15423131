"""Entries of rules/data.smk: ingest_bars, split_segments."""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.data import ingest
from workflow_scripts.data.splits import chronological_split


def ingest_bars(job) -> None:
    spec = job.params.spec
    bars, quality = ingest.ingest(
        job.input.raw, job.wildcards.symbol, spec["start"], spec["end"], spec["min_bars"]
    )
    artifacts.write_parquet(job.output.bars, bars)
    artifacts.write_json(job.output.quality, quality)


def split_segments(job) -> None:
    timestamps = pd.read_parquet(job.input.bars, columns=["timestamp"])["timestamp"]
    s = job.params.spec
    split = chronological_split(
        timestamps, s["horizon"], s["train_frac"], s["validation_frac"], s["embargo_bars"]
    )
    artifacts.write_json(job.output.split, split)
