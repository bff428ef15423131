"""Entry of rule pick_best_variant: the variants of one (symbol, window, side) -> the ranked choice."""

from pathlib import Path

from workflow_scripts import artifacts
from workflow_scripts.best_variant import best_of


def main(args) -> None:
    metrics = [artifacts.read_json(Path(args.stage1_dir) / t / "metrics.json") for t in args.targets_ids]
    evaluations = {t: artifacts.read_json(Path(args.evaluation_dir) / f"{t}.json") for t in args.targets_ids}
    artifacts.write_json(args.out, best_of(args.symbol, args.window, args.side, metrics, evaluations))


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--symbol", required=True)
    p.add_argument("--window", type=int, required=True)
    p.add_argument("--side", required=True, choices=["high", "low"])
    p.add_argument("--stage1-dir", required=True)
    p.add_argument("--evaluation-dir", required=True)
    p.add_argument("--targets-ids", nargs="+", required=True, help="the variants of this side")
    p.add_argument("--out", required=True)
    _cli.run(main, p.parse_args())
