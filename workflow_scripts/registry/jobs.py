"""Entries of rules/registry.smk: register_models, register_agent_models, predict_batch, track_production."""

from workflow_scripts import artifacts
from workflow_scripts.models.folder import split_no_model
from workflow_scripts.registry import tracking
from workflow_scripts.registry.predictions import batch_from_file
from workflow_scripts.registry.runs import (
    decision_record,
    register_agents,
    register_run,
    symbol_data_from_paths,
)


def register_models(job) -> None:
    """Every production (and ensemble) folder with a model; the ones without (models/folder.py write_no_model)
    are listed in run_status.json `no_model` with their reasons, never registered."""
    inp = job.input
    data = symbol_data_from_paths(inp.features, inp.targets, inp.splits)
    folders, none = split_no_model([*inp.production, *inp.ensembles])
    status, roster = register_run(job.params.registry, folders, data, job.params.spec)
    status["no_model"] = none
    artifacts.write_json(job.output.roster, roster)
    artifacts.write_json(job.output.status, status)
    for r in none:
        print(f"not registered, no model: {r['folder']}: {r['reason']}")
    # the decisions alone, by test-free identities (no VIN, no time): docs/LIFECYCLE.md
    artifacts.write_json(job.output.decisions, decision_record(job.params.registry, folders, job.params.spec))


def register_agent_models(job) -> None:
    """One symbol's packaged RL models into the registry index (runs.register_agents)."""
    record = register_agents(job.params.registry, job.input.folder, job.params.spec)
    artifacts.write_json(job.output.record, record)
    for m in record["models"]:
        print(f"{m['vin']}: {m['model_type']} {m['version']} ({m['status']})")
    for d in record["decisions"]:
        print(f"{d['vin']}: {d['decision']} ({d['reason']})")


def predict_batch(job) -> None:
    symbol, registry = job.wildcards.symbol, job.params.registry
    preds = batch_from_file(registry, symbol, job.input.features)
    if preds.empty:
        print(f"{symbol} has no champion in {registry}: writing an empty predictions table")
    artifacts.write_parquet(job.output.predictions, preds)


def track_production(job) -> None:
    p = job.params
    folders, none = split_no_model(job.input.production)
    rows = tracking.log_production_models(folders, p.tracking_dir, p.experiment)
    artifacts.write_json(
        job.output.runs,
        {"experiment": p.experiment, "tracking_dir": p.tracking_dir, "models": rows, "no_model": none},
    )
    for r in rows:
        print(f"{r['vin']}: {r['status']}")
