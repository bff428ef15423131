"""Entry of rules aggregate_selection / aggregate_selection_overall: per-variant top lists -> selected features."""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.feature_selection import (aggregate_selection, plot_importance, selection_markdown,
                                                selection_summary)


def main(args) -> None:
    frames = [pd.read_parquet(p).assign(source=p) for p in args.per_window]
    stacked = pd.concat(frames, ignore_index=True)
    per_variant = [g for _, g in stacked.groupby(["source", "target"], sort=True)]
    n_variants = sum(pd.read_parquet(p)["target"].nunique() for p in args.per_window)
    table = aggregate_selection(per_variant, args.spec["keep_min"], args.spec["keep_max"],
                                args.spec["score_coverage"])
    artifacts.write_json(args.out_json, selection_summary(table, args.spec, n_variants))
    artifacts.write_text(args.out_markdown, selection_markdown(table, f"Feature selection: {args.title}"))
    plot_importance(args.out_plot, table, title=f"Feature selection: {args.title}")


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--per-window", nargs="+", required=True)
    p.add_argument("--title", required=True)
    p.add_argument("--spec", type=_cli.json_arg, required=True)
    for name in ("out-json", "out-markdown", "out-plot"):
        p.add_argument(f"--{name}", required=True)
    _cli.run(main, p.parse_args())
