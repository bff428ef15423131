"""The real workflow through Snakemake on a tiny config of real data: outputs, no-op rerun, targeted
reruns."""

import json

import pandas as pd
import pytest

from tests.workflow.conftest import TINY, planned_jobs, snakemake

pytestmark = pytest.mark.slow


def test_tiny_run_outputs_then_nothing_to_do_then_only_affected_jobs(workflow_dir):
    snakemake(workflow_dir)
    res = workflow_dir / "results"
    summary = pd.read_parquet(res / "best_variant" / "summary.parquet")
    # 2 symbols x 2 windows x 2 sides, each with a chosen variant of its own side.
    assert len(summary) == 8
    assert set(summary["symbol"]) == {"BTCUSDT", "ETHUSDT"}
    assert all(t.startswith(side) for t, side in zip(summary["best_target"], summary["side"]))
    assert summary["validation_average_precision"].between(0, 1).all()
    metrics = json.loads((res / "stage1/BTCUSDT/w5/high_breakout_k1.0_th0.5/metrics.json").read_text())
    assert metrics["status"] == "trained" and metrics["feature_count"] > 0
    selected = json.loads((res / "selection" / "BTCUSDT" / "selected.json").read_text())
    assert metrics["feature_count"] == selected["n_selected"] > 0  # stage 1 trains on the selected features
    screening = json.loads((res / "screening" / "BTCUSDT" / "screening.json").read_text())
    assert set(selected["features"]) <= set(screening["kept"])
    resolved = (res / "config" / "resolved.yaml").read_text()
    assert "integration-test" in resolved and "lookbacks:" in resolved
    features = pd.read_parquet(res / "features" / "BTCUSDT.parquet")
    assert any(c.startswith("ETHUSDT__") for c in features.columns)  # cross-coin columns

    assert planned_jobs(snakemake(workflow_dir, "-n")) == {}

    embargo = snakemake(
        workflow_dir,
        "-n",
        config=TINY[:3]
        + ['overrides=["features.lookbacks=[5,21]","features.lags=[]","split.embargo_bars=30"]'],
    )
    planned = planned_jobs(embargo)
    assert planned["split_segments"] == 4 and planned["train_stage1"] == 4
    assert not {"ingest_bars", "build_features", "add_cross_coin_features", "build_swing_targets"} & set(
        planned
    )

    evaluation = json.loads((res / "evaluation" / "summary.json").read_text())
    assert evaluation["gates"]["n_evaluated"] > 0 and "evaluated models passed" in evaluation["message"]
    assert (res / "evaluation" / "plots" / "BTCUSDT" / "w5" / "high.png").stat().st_size > 10_000
    one = json.loads((res / "evaluation/stage1/BTCUSDT/w5/high_breakout_k1.0_th0.5.json").read_text())
    assert one["costs"]["symbol"] == "BTCUSDT" and one["gate"]["profile"] == "strict" and one["vin"]

    # One symbol's costs change: its evaluations and what depends on them rerun, no retraining.
    costs = snakemake(
        workflow_dir,
        "-n",
        config=TINY[:3]
        + [
            'overrides=["features.lookbacks=[5,21]","features.lags=[]","costs.symbols.ETHUSDT.half_spread_bps=2.0"]'
        ],
    )
    planned = planned_jobs(costs)
    assert planned["snapshot_costs"] == 1 and planned["evaluate_stage1"] == 2
    assert not {"train_stage1", "build_features", "build_swing_targets"} & set(planned)

    screening = snakemake(
        workflow_dir,
        "-n",
        config=TINY[:3]
        + ['overrides=["features.lookbacks=[5,21]","features.lags=[]","screening.max_abs_corr=0.8"]'],
    )
    planned = planned_jobs(screening)
    assert (
        planned["screen_features"] == 2 and planned["select_features"] == 4 and planned["train_stage1"] == 4
    )
    assert not {"ingest_bars", "build_features", "add_cross_coin_features", "build_swing_targets"} & set(
        planned
    )

    grid = snakemake(
        workflow_dir,
        "-n",
        config=TINY[:3]
        + [
            'overrides=["features.lookbacks=[5,21]","features.lags=[]","targets.barrier_thresholds=[0.5,1.5]"]'
        ],
    )
    planned = planned_jobs(grid)
    assert planned["build_swing_targets"] == 4 and planned["train_stage1"] == 4
    assert not {"ingest_bars", "build_features", "add_cross_coin_features"} & set(planned)


def test_bad_config_fails_at_startup_naming_the_key(workflow_dir):
    proc = snakemake(workflow_dir, "-n", config=TINY[:3] + ['overrides=["targets.windows=[1]"]'], check=False)
    assert proc.returncode != 0
    assert "config key 'targets.windows'" in proc.stdout + proc.stderr
    assert not (workflow_dir / "results").exists()
