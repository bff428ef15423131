"""Entry of rule screen_features: one coin's cross-coin feature table -> kept list + per-feature report.

Statistics use the training segment only (the split of the largest window, whose training rows end earliest).
"""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.feature_screening import screen_features, screening_markdown, screening_summary, training_rows
from workflow_scripts.feature_selection import feature_inputs


def main(args) -> None:
    features = pd.read_parquet(args.features)
    split = artifacts.read_json(args.split)
    train = training_rows(features, split)
    kept, report = screen_features(train[feature_inputs(features.columns)], args.spec)
    summary = screening_summary(report, args.spec)
    artifacts.write_json(args.out_json, summary)
    artifacts.write_text(args.out_csv, report.to_csv(index=False))
    artifacts.write_text(args.out_markdown, screening_markdown(report, summary, f"Feature screening: {args.symbol}"))


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    for name in ("symbol", "features", "split", "out-json", "out-csv", "out-markdown"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--spec", type=_cli.json_arg, required=True)
    _cli.run(main, p.parse_args())
