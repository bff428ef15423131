"""Entry of rule build_swing_targets: bars -> label codes of every target of one window (+ counts)."""

import pandas as pd

from workflow_scripts import artifacts, swing_targets
from workflow_scripts.config import horizon_bars, target_grid


def main(args) -> None:
    bars = pd.read_parquet(args.bars)
    spec = args.spec
    grid = target_grid(spec)
    table = swing_targets.build_targets(bars, args.window, grid, horizon_bars(args.window, spec),
                                        spec["sigma_min_bars"])
    summary = swing_targets.target_summary(table, grid)
    empty = [t for t, s in summary.items() if s["events"] == 0]
    if empty:
        raise ValueError(
            f"{args.bars}: window {args.window}: target(s) {empty} produce no events; the grid "
            f"(targets.std_thresholds={spec['std_thresholds']}) is too strict for this data"
        )
    artifacts.write_parquet(args.out, table)
    artifacts.write_json(args.summary, {"window": args.window, "targets": summary})


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--bars", required=True)
    p.add_argument("--window", type=int, required=True)
    p.add_argument("--spec", type=_cli.json_arg, required=True, help="the targets config slice")
    p.add_argument("--out", required=True)
    p.add_argument("--summary", required=True)
    _cli.run(main, p.parse_args())
