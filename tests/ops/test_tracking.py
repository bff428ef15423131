"""env.tracking=mlflow: rule track_production logs the run's production models (params, metrics, artifacts) to
MLflow with a sqlite backend; a rerun logs nothing twice; a tampered folder is refused before anything is
logged."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.ops.conftest import OVERRIDES
from tests.ops.helpers import run_snakemake
from workflow_scripts.models import folder as registry
from workflow_scripts.registry import tracking

TRACKED = [
    "env=integration-test",
    "universe=tiny",
    "targets=small",
    "overrides=[" + ",".join(f'"{o}"' for o in [*OVERRIDES, "env.tracking=mlflow"]) + "]",
]


def test_metrics_and_params_are_flattened_for_mlflow():
    m = tracking.metrics_of(
        {
            "vin": "X",
            "gate": {"passed": True, "reasons": ["a"]},
            "after_costs": {"sharpe": 1.5, "dsr": None, "n": 3, "x": float("nan")},
        }
    )
    assert m == {"gate.passed": 1.0, "after_costs.sharpe": 1.5, "after_costs.n": 3.0}
    p = tracking.params_of(
        {"symbol": "BTCUSDT", "window": 5, "params": {"num_leaves": 31, "fixed": {"a": 1}}}
    )
    assert p == {"symbol": "BTCUSDT", "window": "5", "params.num_leaves": "31", "params.fixed.a": "1"}


@pytest.mark.slow
def logged_files(client, run_id: str, path: str) -> set[str]:
    """Every artifact file under `path` (list_artifacts lists one level; the refit sits in refit/)."""
    out = set()
    for entry in client.list_artifacts(run_id, path):
        out |= logged_files(client, run_id, entry.path) if entry.is_dir else {entry.path}
    return out


def test_production_models_are_logged_once_each(tiny_run, tmp_path):
    from mlflow.tracking import MlflowClient

    wf = tmp_path / "wf"
    shutil.copytree(tiny_run.workdir, wf, symlinks=True)
    r = run_snakemake(["-c1", "results/tracking/mlflow_runs.json", "--config", *TRACKED], cwd=wf, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    ran = set(r.stderr.split("Job stats:")[-1].split("Select jobs")[0].split())
    assert "track_production" in ran and not {"fit_production", "evaluate_production"} & ran  # only tracking

    folders = sorted((wf / "results" / "production").glob("*/w*/*"))
    assert len(folders) == 8
    out = json.loads((wf / "results/tracking/mlflow_runs.json").read_text())
    assert [m["status"] for m in out["models"]] == ["logged"] * 8

    uri, _ = tracking.store(wf / "mlflow" / "integration-test")
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("swingflow-integration-test")
    runs = client.search_runs([exp.experiment_id], max_results=100)
    assert len(runs) == 8
    by_vin = {run.data.tags["vin"]: run for run in runs}
    for folder in folders:
        metrics = json.loads((folder / "metrics.json").read_text())
        config = json.loads((folder / "config.json").read_text())
        run = by_vin[metrics["vin"]]
        assert run.data.params["symbol"] == config["symbol"] and run.data.params["target"] == config["target"]
        assert run.data.metrics == pytest.approx(tracking.metrics_of(metrics))
        logged = logged_files(client, run.info.run_id, "production")
        assert {f"production/{f}" for f in registry.read_sha256(folder)} | {"production/sha256.txt"} <= logged

    again = run_snakemake(
        ["-c1", "-f", "results/tracking/mlflow_runs.json", "--config", *TRACKED], cwd=wf, timeout=900
    )
    assert again.returncode == 0, again.stderr[-4000:]
    out = json.loads((wf / "results/tracking/mlflow_runs.json").read_text())
    assert [m["status"] for m in out["models"]] == ["already logged"] * 8
    assert len(client.search_runs([exp.experiment_id], max_results=100)) == 8

    # a tampered folder: refused, nothing logged
    bad = tmp_path / "bad"
    shutil.copytree(folders[0], bad)
    (bad / "metrics.json").write_text((bad / "metrics.json").read_text().replace("}", ', "x": 1}', 1))
    with pytest.raises(registry.IntegrityError):
        tracking.log_production_models([bad], tmp_path / "store", "swingflow-test")
    assert not (tmp_path / "store").exists()
