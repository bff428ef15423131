"""Entry of rules tune_stage2, tune_stage3, tune_stage4: run (or resume) one study, write its result JSON.

Stage 2 gets the stage-1 choices of every symbol of one window and the files of every symbol (aligned with
--symbols), picks the representative combination (tuning.representative_rule) and tunes it. Stages 3 and 4
get one combination's files and the previous stage's result. The journal (--journal) is the study's storage:
not a Snakemake output, so it survives a failed or killed job and the rerun resumes the study.
"""

from workflow_scripts import artifacts
from workflow_scripts.combination import load_combination
from workflow_scripts.tuning_stages import run_tuning_stage, stage2_representative


def main(args) -> None:
    cfg = args.spec
    n = len(args.symbols)
    for name in ("features", "selected", "targets", "splits"):
        if len(getattr(args, name)) != n:
            raise ValueError(f"--{name} needs one path per symbol ({n}: {args.symbols})")
    if args.stage == "stage2":
        choices = {p: artifacts.read_json(p) for p in args.choices}
        choice = stage2_representative(list(choices.values()), cfg["representative_rule"])
        choice_path = next(p for p, c in choices.items() if c is choice)
        key = f"w{choice['window']}"
    else:
        if len(args.choices) != 1 or n != 1:
            raise ValueError(f"{args.stage} tunes one combination: one --choices path and one symbol")
        choice_path = args.choices[0]
        choice = artifacts.read_json(choice_path)
        key = f"{choice['symbol']}-w{choice['window']}-{choice['side']}"
    i = args.symbols.index(choice["symbol"])
    comb = load_combination(choice_path, args.features[i], args.selected[i], args.targets[i], args.splits[i],
                            args.encoder)
    previous = artifacts.read_json(args.previous) if args.previous else None
    result = run_tuning_stage(args.stage, comb, cfg, n_studies=args.n_studies, journal_path=args.journal,
                              previous=previous, key=key, threads=args.threads)
    result["representative_rule"] = cfg["representative_rule"] if args.stage == "stage2" else None
    artifacts.write_json(args.out, result)


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--stage", required=True, choices=["stage2", "stage3", "stage4"])
    p.add_argument("--symbols", nargs="+", required=True)
    p.add_argument("--choices", nargs="+", required=True, help="results/best_variant/{symbol}/w{window}/{side}.json")
    p.add_argument("--features", nargs="+", required=True, help="one per symbol")
    p.add_argument("--selected", nargs="+", required=True, help="one per symbol")
    p.add_argument("--targets", nargs="+", required=True, help="one per symbol")
    p.add_argument("--splits", nargs="+", required=True, help="one per symbol")
    p.add_argument("--encoder", default=None, help="the shared encoder (results/encoder/{kind}.json), if any")
    p.add_argument("--previous", default=None, help="the previous stage's result JSON (stages 3 and 4)")
    p.add_argument("--spec", type=_cli.json_arg, required=True, help="the tuning config group")
    p.add_argument("--n-studies", type=int, required=True, help="studies of this stage sharing its budget")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--journal", required=True)
    p.add_argument("--out", required=True)
    _cli.run(main, p.parse_args())
