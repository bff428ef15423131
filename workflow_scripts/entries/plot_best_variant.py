"""Entry of rule plot_best_variant: equity curve after costs, with drawdown, of the chosen variant."""

from pathlib import Path

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.evaluation import plot_equity
from workflow_scripts.variant_evaluation import test_result_with_curves


def main(args) -> None:
    choice = artifacts.read_json(args.choice)
    cfg = args.spec
    bars = pd.read_parquet(args.bars, columns=["timestamp", "close"])
    if choice["best"] is None:
        raise ValueError(f"{args.choice}: no trained variant to plot for {choice['symbol']} w{choice['window']} "
                         f"{choice['side']}")
    target = choice["best"]["target"]
    evaluated = artifacts.read_json(Path(args.evaluation_dir) / f"{target}.json")
    predictions = pd.read_parquet(Path(args.stage1_dir) / target / "predictions.parquet")
    result = test_result_with_curves(pd.read_parquet(args.targets), bars["close"].to_numpy(),
                                     artifacts.read_json(args.split), choice["window"], cfg["targets"], target,
                                     predictions, artifacts.read_json(args.costs), cfg, evaluated)
    title = f"{choice['symbol']} w{choice['window']} {target} ({evaluated.get('vin')})"
    plot_equity(args.out, result, title, bars["timestamp"].to_numpy())


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    for name in ("choice", "bars", "targets", "split", "costs", "stage1-dir", "evaluation-dir", "out"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--spec", type=_cli.json_arg, required=True)
    _cli.run(main, p.parse_args())
