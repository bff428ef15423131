"""Entry of rule train_stage1: every target of one (symbol, window) -> one folder per variant.

Per variant: model.txt (LightGBM text; empty when skipped), metrics.json (deterministic: no timings; model_sha256),
split_indices.json, predictions.parquet (validation and test event bars), training_log.json (fit seconds and other facts that differ between runs).
"""

import json
from pathlib import Path

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.stage1 import METRICS_FILE, MODEL_FILE, train_window


def main(args) -> None:
    split = artifacts.read_json(args.split)
    targets = pd.read_parquet(args.targets)
    columns = None
    if args.feature_list:
        columns = ["timestamp"] + json.loads(Path(args.feature_list).read_text())["features"]
    features = pd.read_parquet(args.features, columns=columns)
    results = train_window(features, targets, split, args.targets_ids, args.spec, threads=args.threads)
    outdir = Path(args.outdir)
    for r in results:
        folder = outdir / r.target
        log = {"fit_seconds": r.metrics.pop("fit_seconds", None), "threads": args.threads}
        artifacts.write_text(folder / MODEL_FILE, r.model_text)
        r.metrics["model_sha256"] = artifacts.sha256_file(folder / MODEL_FILE)  # checked by whoever uses the model
        artifacts.write_json(folder / "split_indices.json", r.split_indices)
        artifacts.write_parquet(folder / "predictions.parquet", r.predictions)
        artifacts.write_json(folder / "training_log.json", log)
        artifacts.write_json(folder / METRICS_FILE, r.metrics)  # last: its presence means the folder is whole


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--features", required=True)
    p.add_argument("--feature-list", default=None, help="JSON with a 'features' list: train on these columns only")
    p.add_argument("--targets", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--targets-ids", nargs="+", required=True)
    p.add_argument("--spec", type=_cli.json_arg, required=True, help="the stage1 config slice")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--outdir", required=True)
    _cli.run(main, p.parse_args())
