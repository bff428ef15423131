"""Entries of rules/data.smk: ingest_bars, split_segments."""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.data import ingest, quality
from workflow_scripts.data.splits import TooShortError, chronological_split


def ingest_bars(job) -> None:
    spec = job.params.spec
    checks = {name: spec[name] for name in quality.CHECKS}
    bars, report = ingest.ingest(
        job.input.raw, job.wildcards.symbol, spec["start"], spec["end"], spec["min_bars"], checks
    )
    for f in report["findings"]:
        print(f"quality {f['action']}: {f['symbol']} {f['check']}: {f['rule']}")
    artifacts.write_parquet(job.output.bars, bars)
    artifacts.write_json(job.output.quality, report)


def split_segments(job) -> None:
    timestamps = pd.read_parquet(job.input.bars, columns=["timestamp"])["timestamp"]
    s = job.params.spec
    try:
        split = chronological_split(
            timestamps, s["horizon"], s["train_frac"], s["validation_frac"], s["embargo_bars"]
        )
    except TooShortError as exc:
        w = job.wildcards
        raise TooShortError(
            f"{job.input.bars}: {w.symbol} is {exc}; window {w.window} is not trainable"
        ) from None
    artifacts.write_json(job.output.split, split)
