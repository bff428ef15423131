"""Entry of rule track_production: the run's production models logged to MLflow (workflow_scripts/tracking.py)."""

from workflow_scripts import artifacts, tracking


def main(args) -> None:
    rows = tracking.log_production_models(args.production, args.tracking_dir, args.experiment)
    artifacts.write_json(args.out, {"experiment": args.experiment, "tracking_dir": args.tracking_dir, "models": rows})
    for r in rows:
        print(f"{r['vin']}: {r['status']}")


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--production", nargs="+", required=True, help="production folders")
    p.add_argument("--tracking-dir", required=True, help="folder of the sqlite store and the artifacts")
    p.add_argument("--experiment", required=True)
    p.add_argument("--out", required=True)
    _cli.run(main, p.parse_args())
