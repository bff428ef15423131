"""Entry of rule build_features: one coin's bars -> its own feature table."""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.features import build_features


def main(args) -> None:
    bars = pd.read_parquet(args.bars)
    artifacts.write_parquet(args.out, build_features(bars, args.spec))


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--bars", required=True)
    p.add_argument("--spec", type=_cli.json_arg, required=True)
    p.add_argument("--out", required=True)
    _cli.run(main, p.parse_args())
