"""Entry of rules summarize_symbol / summarize_best_variants: choices -> parquet, CSV and markdown tables."""

from workflow_scripts import artifacts
from workflow_scripts.best_variant import headline_metrics, summary_table, to_markdown


def main(args) -> None:
    table = summary_table([artifacts.read_json(p) for p in args.choices])
    artifacts.write_parquet(args.out_parquet, table)
    artifacts.write_text(args.out_markdown, to_markdown(table, args.title))
    if args.out_csv:
        artifacts.write_text(args.out_csv, table.to_csv(index=False))
    if args.out_metrics:
        artifacts.write_json(args.out_metrics, headline_metrics(table))


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--choices", nargs="+", required=True)
    p.add_argument("--title", required=True)
    p.add_argument("--out-parquet", required=True)
    p.add_argument("--out-markdown", required=True)
    p.add_argument("--out-csv", default=None)
    p.add_argument("--out-metrics", default=None, help="headline figures for `dvc metrics show`")
    _cli.run(main, p.parse_args())
