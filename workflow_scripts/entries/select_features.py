"""Entry of rule select_features: every variant of one (symbol, window) -> its top features by gain."""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.feature_screening import segment_positions
from workflow_scripts.feature_selection import load_columns, plan_window, select_window


def main(args) -> None:
    kept = artifacts.read_json(args.screening)["kept"]
    split = artifacts.read_json(args.split)
    targets = pd.read_parquet(args.targets)
    train = segment_positions(split, "train", len(targets))
    union, variants = plan_window(targets, train, args.targets_ids, args.spec, split["horizon"])
    X = load_columns(args.features, kept).to_numpy("float32")[union]
    tables = select_window(X, kept, union, variants, args.spec)
    rows = [t.assign(target=tid) for tid, t in tables.items()]
    out = pd.concat(rows, ignore_index=True)[["target", "feature", "gain", "norm_gain"]]
    artifacts.write_parquet(args.out, out)


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    for name in ("features", "screening", "targets", "split", "out"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--targets-ids", nargs="+", required=True)
    p.add_argument("--spec", type=_cli.json_arg, required=True)
    _cli.run(main, p.parse_args())
