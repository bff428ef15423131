"""Entry of rule add_cross_coin_features: own table + the other universe coins' tables -> cross-coin table."""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.features import add_cross_coin


def main(args) -> None:
    own = pd.read_parquet(args.own)
    others = {}
    for item in args.others:
        symbol, path = item.split("=", 1)
        others[symbol] = pd.read_parquet(path)
    artifacts.write_parquet(args.out, add_cross_coin(own, others))


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--own", required=True)
    p.add_argument("--others", nargs="*", default=[], help="SYMBOL=path to that coin's own feature table")
    p.add_argument("--out", required=True)
    _cli.run(main, p.parse_args())
