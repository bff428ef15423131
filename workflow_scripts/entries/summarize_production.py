"""Entry of rule summarize_production: every production folder -> one row each (summary.parquet, summary.md)."""

from pathlib import Path

from workflow_scripts import artifacts
from workflow_scripts.best_variant import to_markdown
from workflow_scripts.production import summary_row, summary_table


def main(args) -> None:
    rows = [summary_row(artifacts.read_json(Path(f) / "config.json"), artifacts.read_json(Path(f) / "metrics.json"))
            for f in args.folders]
    table = summary_table(rows)
    artifacts.write_parquet(args.out_parquet, table)
    passed = int(table["gate_passed"].sum())
    title = (f"Production models: {len(table)} (symbol, window, side), {passed} passed the gates "
             "(test segment, after costs)")
    artifacts.write_text(args.out_markdown, to_markdown(table, title))


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--folders", nargs="+", required=True)
    p.add_argument("--out-parquet", required=True)
    p.add_argument("--out-markdown", required=True)
    _cli.run(main, p.parse_args())
