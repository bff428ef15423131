"""Entry of rule pick_best_variant: the variants of one (symbol, window, side) -> the ranked choice."""

from workflow_scripts import artifacts
from workflow_scripts.best_variant import best_of


def main(args) -> None:
    metrics = [artifacts.read_json(p) for p in args.metrics]
    evaluations = {r["target"]: r for r in (artifacts.read_json(p) for p in args.evaluations)}
    artifacts.write_json(args.out, best_of(args.symbol, args.window, args.side, metrics, evaluations))


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--symbol", required=True)
    p.add_argument("--window", type=int, required=True)
    p.add_argument("--side", required=True, choices=["high", "low"])
    p.add_argument("--metrics", nargs="+", required=True)
    p.add_argument("--evaluations", nargs="+", required=True)
    p.add_argument("--out", required=True)
    _cli.run(main, p.parse_args())
