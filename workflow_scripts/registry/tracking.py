"""Optional experiment tracking: production models logged to MLflow with a local sqlite backend.

`env.tracking: mlflow` adds rule track_production (rules/tracking.smk): every production folder of the run
(results/production/{symbol}/w{window}/{side}/, contract in docs/REGISTRY.md) becomes one MLflow run in the
experiment `swingflow-<env>`, named and tagged by its VIN, with
    params     the folder's config.json: symbol, window, side, target, model_type and the model's `params`
               (flattened: `params.num_leaves`, ...)
    metrics    every finite number of metrics.json, flattened with dots (`after_costs.sharpe`, `gate.passed`,
               ...)
    artifacts  every file of the folder (model file, config, metrics, features, sha256.txt, ...)
The store lives in the tracking folder (default `mlflow/<env>`, outside results/ like the registry):
`mlflow.db` (sqlite) and `artifacts/`. See it with `mlflow ui --backend-store-uri sqlite:///mlflow/<env>/mlflow.db`.
A folder whose VIN is already logged in the experiment is not logged again (a rerun adds nothing). Folders are
verified against their sha256.txt before anything is logged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from workflow_scripts.models.folder import verify_folder

MAX_PARAM_CHARS = 500  # MLflow's limit per param value (6000 in recent servers; stay portable)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}, 'c': [2]} -> {'a.b': 1, 'c.0': 2}."""
    out: dict[str, Any] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = obj
    return out


def metrics_of(metrics: Mapping) -> dict[str, float]:
    """The finite numbers (bools as 0/1) of a metrics document, flattened; text and nulls are left out."""
    out = {}
    for k, v in flatten(metrics).items():
        if isinstance(v, bool) or isinstance(v, (int, float)) and math.isfinite(v):
            out[k] = float(v)
    return out


def params_of(config: Mapping) -> dict[str, str]:
    keys = ("symbol", "window", "side", "target", "model_type")
    out = {k: str(config[k]) for k in keys if k in config}
    for k, v in flatten(config.get("params") or {}, "params.").items():
        out[k] = str(v)[:MAX_PARAM_CHARS]
    return out


def store(tracking_dir: str | Path) -> tuple[str, str]:
    """(tracking URI of the sqlite backend, artifact root URI) under `tracking_dir`."""
    root = Path(tracking_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()


def log_production_models(
    folders: Iterable[str | Path], tracking_dir: str | Path, experiment: str
) -> list[dict]:
    """Log each production folder as one MLflow run; returns [{vin, symbol, window, side, status}] sorted by
    VIN, status "logged" or "already logged"."""
    import mlflow
    from mlflow.tracking import MlflowClient

    folders = [Path(f) for f in folders]
    docs = []
    for folder in folders:
        verify_folder(folder)  # a tampered or incomplete folder stops everything before logging
        config = json.loads((folder / "config.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
        docs.append((folder, config, metrics))

    uri, artifacts = store(tracking_dir)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment, artifact_location=artifacts)
    mlflow.set_tracking_uri(uri)
    out = []
    for folder, config, metrics in sorted(docs, key=lambda d: d[2]["vin"]):
        vin = metrics["vin"]
        row = {"vin": vin, **{k: config.get(k) for k in ("symbol", "window", "side")}}
        if client.search_runs([exp_id], filter_string=f"tags.vin = '{vin}'", max_results=1):
            out.append({**row, "status": "already logged"})
            continue
        with mlflow.start_run(
            experiment_id=exp_id,
            run_name=vin,
            tags={
                "vin": vin,
                "symbol": str(config.get("symbol")),
                "side": str(config.get("side")),
                "window": str(config.get("window")),
                "folder": str(folder),
            },
        ):
            mlflow.log_params(params_of(config))
            mlflow.log_metrics(metrics_of(metrics))
            mlflow.log_artifacts(str(folder), artifact_path="production")
        out.append({**row, "status": "logged"})
    return out
