"""Entry of rule register_models: a run's production folders -> registry (versions, champions, run records);
results/registry/run_status.json and roster.json."""

from workflow_scripts import artifacts
from workflow_scripts.registry_run import register_run, symbol_data_from_paths


def main(args) -> None:
    data = symbol_data_from_paths(args.features, args.targets, args.splits)
    status, roster = register_run(args.registry, args.production, data, args.spec)
    artifacts.write_json(args.out_roster, roster)
    artifacts.write_json(args.out_status, status)


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--registry", required=True, help="registry folder (env.storage.registry_dir)")
    p.add_argument("--production", nargs="+", required=True, help="results/production/{SYMBOL}/w{w}/{side} folders")
    p.add_argument("--features", nargs="+", required=True, help="results/features/{SYMBOL}.parquet")
    p.add_argument("--targets", nargs="+", required=True, help="results/targets/{SYMBOL}/w{w}.parquet")
    p.add_argument("--splits", nargs="+", required=True, help="results/splits/{SYMBOL}/w{w}.json")
    p.add_argument("--spec", type=_cli.json_arg, required=True, help="the registry config group as JSON")
    p.add_argument("--out-status", required=True)
    p.add_argument("--out-roster", required=True)
    _cli.run(main, p.parse_args())
