"""Entry of rule train_production: one best combination -> results/production/{symbol}/w{window}/{side}/.

Tuned stage-4 parameters, the model config's head (lightgbm / xgboost / ...: production.fit_head), early
stopping on the validation segment, stage 1's evaluation on the untouched test segment, then the production
folder of docs/REGISTRY.md with sha256.txt written last.
"""

import pandas as pd

from workflow_scripts import artifacts, production
from workflow_scripts.combination import load_combination


def main(args) -> None:
    spec = args.spec
    model_cfg = spec["model"]
    comb = load_combination(args.choice, args.features, args.selected, args.targets, args.split, args.encoder)
    choice = artifacts.read_json(args.choice)
    tuning = {stage: artifacts.read_json(p) for stage, p in
              (("stage2", args.stage2), ("stage3", args.stage3), ("stage4", args.stage4))}
    tuned, _ = production.tuned_params(comb, tuning)
    trained = production.train_combination(comb, tuned, model_cfg, threads=args.threads)
    bars = pd.read_parquet(args.bars, columns=["timestamp", "close"])
    costs = artifacts.read_json(args.costs)
    trials = production.dsr_trials(choice, tuning)
    evaluation = production.evaluate_production(comb, trained, bars["close"].to_numpy(), costs, spec, trials)

    data_version = artifacts.sha256_file(args.bars)
    data_end = bars["timestamp"].iloc[-1].isoformat()

    def documents(model_sha256: str) -> dict:
        return production.folder_documents(comb, trained, tuning, evaluation, trials, costs, spec,
                                           data_version=data_version, data_end=data_end,
                                           model_sha256=model_sha256, threads=args.threads)

    production.write_folder(args.outdir, trained.model, documents, encoder_path=args.encoder)
    print(f"{args.outdir}: grade {evaluation['grade']['grade']}, gate passed {evaluation['gate']['passed']}")


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--choice", required=True)
    p.add_argument("--stage2", required=True)
    p.add_argument("--stage3", required=True)
    p.add_argument("--stage4", required=True)
    p.add_argument("--features", required=True)
    p.add_argument("--selected", required=True)
    p.add_argument("--targets", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--bars", required=True)
    p.add_argument("--costs", required=True)
    p.add_argument("--encoder", default=None)
    p.add_argument("--spec", type=_cli.json_arg, required=True,
                   help="model, targets, evaluation, gates, grades, features groups and the universe")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--outdir", required=True)
    _cli.run(main, p.parse_args())
