"""Entry of rule fit_ensemble: one symbol's production models of every window for one side ->
results/ensemble/{symbol}/{side}/, an ensemble production folder (model_type "ensemble", docs/REGISTRY.md).

Average and validation-fitted stacker over the windows' models on the best member's target; evaluation, gates,
grade and VIN as for any production model (workflow_scripts/ensemble_production.py, docs/TORCH_MODELS.md).
"""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.ensemble_production import build_folder


def main(args) -> None:
    n = len(args.windows)
    if not (len(args.production) == len(args.targets) == len(args.splits) == n):
        raise ValueError(f"need one --production, --targets and --splits per window ({n}: {args.windows}), "
                         f"got {len(args.production)}, {len(args.targets)}, {len(args.splits)}")
    metrics = build_folder(
        args.outdir,
        dict(zip(args.windows, args.production)),
        pd.read_parquet(args.features),
        {w: pd.read_parquet(p) for w, p in zip(args.windows, args.targets)},
        {w: artifacts.read_json(p) for w, p in zip(args.windows, args.splits)},
        pd.read_parquet(args.bars, columns=["timestamp", "close"]),
        artifacts.read_json(args.costs),
        args.spec,
        data_version=artifacts.sha256_file(args.bars),
    )
    print(f"{args.outdir}: {metrics['vin']} ({metrics['ensemble_validation_scores']}), grade "
          f"{metrics['grade']['grade']}, gate passed {metrics['gate']['passed']}")


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--windows", nargs="+", type=int, required=True)
    p.add_argument("--production", nargs="+", required=True, help="results/production/{symbol}/w{w}/{side}, per window")
    p.add_argument("--features", required=True, help="results/features/{symbol}.parquet")
    p.add_argument("--targets", nargs="+", required=True, help="results/targets/{symbol}/w{w}.parquet, per window")
    p.add_argument("--splits", nargs="+", required=True, help="results/splits/{symbol}/w{w}.json, per window")
    p.add_argument("--bars", required=True)
    p.add_argument("--costs", required=True)
    p.add_argument("--spec", type=_cli.json_arg, required=True,
                   help="ensemble, targets, evaluation, gates and grades groups")
    p.add_argument("--outdir", required=True)
    _cli.run(main, p.parse_args())
