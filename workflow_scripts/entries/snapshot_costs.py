"""Entry of rule snapshot_costs: the costs of one symbol, fetched before training and saved for evaluation."""

from workflow_scripts import artifacts
from workflow_scripts.costs import ConfigCostProvider, cost_snapshot


def main(args) -> None:
    artifacts.write_json(args.out, cost_snapshot(ConfigCostProvider(args.table), args.symbol))


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--symbol", required=True)
    p.add_argument("--table", type=_cli.json_arg, required=True, help="the costs config slice of this symbol")
    p.add_argument("--out", required=True)
    _cli.run(main, p.parse_args())
