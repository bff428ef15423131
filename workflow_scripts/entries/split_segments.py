"""Entry of rule split_segments: bars -> chronological segments with purge and embargo for one window."""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.splits import chronological_split


def main(args) -> None:
    timestamps = pd.read_parquet(args.bars, columns=["timestamp"])["timestamp"]
    s = args.spec
    split = chronological_split(timestamps, s["horizon"], s["train_frac"], s["validation_frac"], s["embargo_bars"])
    artifacts.write_json(args.out, split)


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--bars", required=True)
    p.add_argument("--spec", type=_cli.json_arg, required=True)
    p.add_argument("--out", required=True)
    _cli.run(main, p.parse_args())
