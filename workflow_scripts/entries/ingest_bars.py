"""Entry of rule ingest_bars: raw file -> normalised parquet + data-quality report."""

from workflow_scripts import artifacts, ingest
from workflow_scripts.entries import _cli


def main(args) -> None:
    spec = args.spec
    bars, quality = ingest.ingest(args.raw, args.symbol, spec["start"], spec["end"], spec["min_bars"])
    artifacts.write_parquet(args.out_bars, bars)
    artifacts.write_json(args.out_quality, quality)


if __name__ == "__main__":
    p = _cli.parser(__doc__)
    p.add_argument("--raw", required=True)
    p.add_argument("--symbol", required=True)
    p.add_argument("--spec", type=_cli.json_arg, required=True, help='{"start":..,"end":..,"min_bars":..}')
    p.add_argument("--out-bars", required=True)
    p.add_argument("--out-quality", required=True)
    _cli.run(main, p.parse_args())
