"""Entry of rule build_swing_targets (rules/targets.smk): every target of one (symbol, window)."""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.targets import swing_targets
from workflow_scripts.targets.grammar import horizon_bars, target_grid


def build_swing_targets(job) -> None:
    bars = pd.read_parquet(job.input.bars)
    spec, window = job.params.spec, int(job.wildcards.window)
    grid = target_grid(spec)
    table = swing_targets.build_targets(
        bars, window, grid, horizon_bars(window, spec), spec["sigma_min_bars"]
    )
    summary = swing_targets.target_summary(table, grid)
    empty = [t for t, s in summary.items() if s["events"] == 0]
    if empty:
        raise ValueError(
            f"{job.input.bars}: window {window}: target(s) {empty} produce no events; the grid "
            f"(targets.std_thresholds={spec['std_thresholds']}) is too strict for this data"
        )
    artifacts.write_parquet(job.output.targets, table)
    artifacts.write_json(job.output.summary, {"window": window, "targets": summary})
