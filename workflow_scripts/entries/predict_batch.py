"""Entry of rule predict_batch: the champions of one symbol over its whole feature table -> predictions parquet."""

from workflow_scripts import artifacts
from workflow_scripts.predictions import batch_from_file


def main(args) -> None:
    preds = batch_from_file(args.registry, args.symbol, args.features)
    if preds.empty:
        print(f"{args.symbol} has no champion in {args.registry}: writing an empty predictions table")
    artifacts.write_parquet(args.out, preds)


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--registry", required=True, help="registry folder (env.storage.registry_dir)")
    p.add_argument("--symbol", required=True)
    p.add_argument("--features", required=True, help="results/features/{SYMBOL}.parquet")
    p.add_argument("--out", required=True)
    _cli.run(main, p.parse_args())
