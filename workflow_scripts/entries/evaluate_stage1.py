"""Entry of rule evaluate_stage1: predictions of every variant of one (symbol, window) -> one result each."""

from pathlib import Path

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.stage1 import METRICS_FILE, verified_model_sha256
from workflow_scripts.variant_evaluation import evaluate_window, variant_vin


def main(args) -> None:
    cfg = args.spec
    bars = pd.read_parquet(args.bars, columns=["timestamp", "close"])
    targets = pd.read_parquet(args.targets)
    split = artifacts.read_json(args.split)
    costs = artifacts.read_json(args.costs)
    stage1 = Path(args.stage1_dir)
    # Every model is checked against the sha256 its training recorded before anything is written.
    model_sha256 = {t: verified_model_sha256(stage1 / t) for t in args.targets_ids}
    predictions = {t: pd.read_parquet(stage1 / t / "predictions.parquet") for t in args.targets_ids}
    results = evaluate_window(targets, bars["close"].to_numpy(), split, args.window, cfg["targets"], predictions,
                              costs, cfg)
    data_end = bars["timestamp"].iloc[-1].isoformat()
    for target, result in results.items():
        if result["status"] == "evaluated":
            metrics = artifacts.read_json(stage1 / target / METRICS_FILE)
            result["vin"] = variant_vin(args.symbol, args.window, target, cfg["stage1_params"],
                                        result["grade"]["grade"], metrics["best_iteration"], data_end,
                                        model_sha256[target])
        artifacts.write_json(Path(args.outdir) / f"{target}.json", result)


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--symbol", required=True)
    p.add_argument("--window", type=int, required=True)
    p.add_argument("--bars", required=True)
    p.add_argument("--targets", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--costs", required=True)
    p.add_argument("--stage1-dir", required=True)
    p.add_argument("--targets-ids", nargs="+", required=True)
    p.add_argument("--spec", type=_cli.json_arg, required=True,
                   help="targets, evaluation, gates, grades config groups and stage1_params")
    p.add_argument("--outdir", required=True)
    _cli.run(main, p.parse_args())
