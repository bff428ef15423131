"""A (symbol, window, side) whose stage-1 variants were all skipped is carried through as "no model": its
tuning results, fit and production folders say so with the reason, the summary lists it, the slot's trial
count adds nothing for it, and the registry never sees it (docs/SCALE.md, "Sides without a model").

The job entries run here on files, as Snakemake calls them; tests/registry/test_registry_workflow.py runs the
same through Snakemake, where the data itself leaves a side without a variant."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workflow_scripts import artifacts
from workflow_scripts.evaluation import jobs as evaluation_jobs
from workflow_scripts.job import Job
from workflow_scripts.models.folder import (
    NO_MODEL_FILE,
    IntegrityError,
    no_model,
    split_no_model,
    verify_folder,
    write_no_model,
)
from workflow_scripts.training import jobs as training_jobs
from workflow_scripts.training.combination import chosen_target, no_model_reason
from workflow_scripts.training.trials import slot_trials
from workflow_scripts.training.tuning_stages import no_model_result

BELOW = "(neither, breakout, reversion) below stage1.min_class_rows=10"
SKIPPED = [
    {
        "target": "high_breakout_k1.5_th0.5",
        "status": "skipped",
        "reason": f"validation class counts [40, 3, 9] {BELOW}",
    },
    {
        "target": "high_reversion_k1.5_th0.5",
        "status": "skipped",
        "reason": f"validation class counts [44, 1, 7] {BELOW}",
    },
]


def choice(side: str, trained: bool = False) -> dict:
    best = {"target": "high_breakout_k1.5_th0.5", "validation_average_precision": 0.5, "train_rows": 900}
    ranked = [{**SKIPPED[0], "status": "trained", "reason": ""}, SKIPPED[1]] if trained else SKIPPED
    return {
        "symbol": "BTCUSDT",
        "window": 5,
        "side": side,
        "best": best if trained else None,
        "variants_ranked": ranked,
        "trained": int(trained),
        "skipped": 2 - int(trained),
    }


def run(entry, inputs: dict, outputs: dict, **params) -> Job:
    """A job as rules/common.smk `job` describes it, run by its entry function."""
    job = Job.from_manifest(
        {
            "entry": entry,
            "input": inputs,
            "output": outputs,
            "params": {"sides": ["high", "low"], **params},
            "wildcards": {"symbol": "BTCUSDT", "window": "5"},
            "threads": 1,
        }
    )
    getattr(training_jobs if entry.startswith("training.") else evaluation_jobs, entry.split(".")[1])(job)
    return job


@pytest.fixture
def no_variant_choices(tmp_path) -> list[str]:
    paths = []
    for side in ("high", "low"):
        path = tmp_path / f"best_variant/BTCUSDT/w5/{side}.json"
        artifacts.write_json(path, choice(side))
        paths.append(str(path))
    return paths


def test_the_reason_lists_every_skipped_variant_and_a_trained_one_has_none():
    reason = no_model_reason(choice("low"))
    assert reason == (
        "no trained stage-1 variant (high_breakout_k1.5_th0.5: "
        + SKIPPED[0]["reason"]
        + "; high_reversion_k1.5_th0.5: "
        + SKIPPED[1]["reason"]
        + ")"
    )
    assert no_model_reason(choice("low", trained=True)) is None
    with pytest.raises(ValueError, match="no trained stage-1 variant for BTCUSDT w5 low"):
        chosen_target(choice("low"))  # whoever needs a target still refuses, by name


def test_a_no_model_record_needs_its_keys_and_writes_nothing_without_them(tmp_path):
    folder = tmp_path / "production/BTCUSDT/w5/low"
    with pytest.raises(ValueError, match=r"a no-model record needs \['reason'\]"):
        write_no_model(folder, {"symbol": "BTCUSDT", "window": 5, "side": "low"})
    assert not folder.exists()
    write_no_model(folder, {"symbol": "BTCUSDT", "window": 5, "side": "low", "reason": "why"})
    with pytest.raises(IntegrityError, match=r"w5/low: no model in this folder \(no_model.json\): why$"):
        # `swingflow register` and every other reader of a model folder refuse it, by name
        verify_folder(folder)
    models, none = split_no_model([folder, tmp_path / "production/BTCUSDT/w5/high"])
    assert models == [tmp_path / "production/BTCUSDT/w5/high"]
    assert none == [{"symbol": "BTCUSDT", "window": 5, "side": "low", "reason": "why", "folder": str(folder)}]


PATHS = {
    "stage3": "tuning/stage3/BTCUSDT/w5/{}.json",
    "stage4": "tuning/stage4/BTCUSDT/w5/{}.json",
    "fit": "production_fit/BTCUSDT/w5/{}",
    "folder": "production/BTCUSDT/w5/{}",
}


def test_tuning_fit_and_evaluation_carry_both_sides_through_as_no_model(tmp_path, no_variant_choices):
    shared = {"features": "unused.parquet", "selected": "unused.json", "targets": "unused.parquet"}
    shared |= {"split": "unused.json", "encoder": []}  # never read: a side without a variant stops first
    per = {s: {k: str(tmp_path / p.format(s)) for k, p in PATHS.items()} for s in ("high", "low")}
    sides = ("high", "low")

    def paths(kind):
        return [per[s][kind] for s in sides]

    stage2 = str(tmp_path / "tuning/stage2/w5.json")
    common = {"choice": no_variant_choices, **shared}
    run("training.tune_stage3", common | {"previous": stage2}, {"result": paths("stage3")}, spec={})
    run(
        "training.tune_stage4",
        common | {"previous": paths("stage3")},
        {"result": paths("stage4")},
        spec={},
    )
    production = common | {"previous": paths("stage4"), "stage2": stage2, "stage3": paths("stage3")}
    run("training.fit_production", production, {"fit": paths("fit")}, model={})
    slot = {"bars": "unused.parquet", "costs": "unused.json", "slot_reports": [], "slot_stage2": []}
    slot |= {"slot_stage3": [], "slot_stage4": []}
    evaluate = production | {"fit": paths("fit"), **slot}
    run("training.evaluate_production", evaluate, {"folder": paths("folder")}, spec={}, windows=[5])
    for side in sides:
        reason = no_model_reason(choice(side))
        for stage in ("stage3", "stage4"):
            result = artifacts.read_json(per[side][stage])
            record = {"symbol": "BTCUSDT", "window": 5, "side": side, "reason": reason}
            assert result == no_model_result(stage, record)
            assert not Path(per[side][stage]).with_suffix(".journal").exists()  # no study was opened
        for kind in ("fit", "folder"):
            assert [p.name for p in Path(per[side][kind]).iterdir()] == [NO_MODEL_FILE]
            assert no_model(per[side][kind]) == {
                "symbol": "BTCUSDT",
                "window": 5,
                "side": side,
                "reason": reason,
            }


def test_a_window_where_no_side_has_a_variant_writes_a_no_model_stage2(tmp_path, no_variant_choices):
    out = tmp_path / "tuning/stage2/w5.json"
    inputs = {"choices": no_variant_choices, "features": [], "selected": [], "targets": [], "splits": []}
    run("training.tune_stage2", inputs | {"encoder": []}, {"result": str(out)}, spec={}, symbols=[])
    result = artifacts.read_json(out)
    assert result["no_model"] == "no combination of w5 has a trained stage-1 variant (2 choices)"
    assert result["finished_trials"] == 0 and result["stopped_by"] == "no_model"


def test_a_no_model_window_adds_no_trial_to_its_slot():
    trained = choice("low", trained=True) | {"window": 20}
    none = {stage: no_model_result(stage, {"window": 5, "reason": "why"}) for stage in ("stage3", "stage4")}
    tuned = {stage: {"finished_trials": 7} for stage in ("stage2", "stage3", "stage4")}
    counted = slot_trials(
        {5: choice("low"), 20: trained}, {5: {"stage2": {"finished_trials": 7}} | none, 20: tuned}
    )
    assert counted["by_window"][5] == {"stage1_variants": 0, "stage2": 7, "stage3": 0, "stage4": 0}
    assert counted["n_trials"] == 7 + (1 + 7 * 3)


def test_the_plot_of_a_side_without_a_variant_says_why(tmp_path):
    reports = []
    for side, trained in (("high", False), ("low", False)):
        path = tmp_path / f"best_variant/BTCUSDT/w5/{side}.report.json"
        artifacts.write_json(path, choice(side, trained))
        reports.append(str(path))
    plots = [str(tmp_path / f"plots/BTCUSDT/w5/{s}.png") for s in ("high", "low")]
    inputs = {"report": reports, "bars": "unused", "targets": "unused", "split": "unused", "costs": "unused"}
    run(
        "evaluation.plot_best_variant",
        inputs | {"stage1": "unused", "evaluations": "unused"},
        {"plot": plots},
        spec={},
    )
    for plot in plots:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_production_summary_lists_models_and_sides_without_one(tmp_path):
    model = tmp_path / "production/BTCUSDT/w5/high"
    config = {"symbol": "BTCUSDT", "window": 5, "side": "high", "target": "high_breakout_k1.5_th0.5"}
    config |= {"model_type": "lightgbm", "tuned_params": {"num_leaves": 15}}
    after = {"n_trades": 12, "total_return": 0.05, "sharpe_per_trade": 0.2, "dsr": 0.9, "max_drawdown": 0.03}
    metrics = {"evaluation": {"after_costs": after}, "validation_average_precision": 0.41}
    metrics |= {"test_average_precision": 0.39, "dsr_trials": {"n_trials": 9}, "gate": {"passed": True}}
    metrics |= {"grade": {"grade": "B"}, "vin": "LGBM-BTCUSDT-H5-X"}
    artifacts.write_json(model / "config.json", config)
    artifacts.write_json(model / "metrics.json", metrics)
    none = tmp_path / "production/BTCUSDT/w5/low"
    write_no_model(
        none, {"symbol": "BTCUSDT", "window": 5, "side": "low", "reason": "no trained stage-1 variant (x)"}
    )
    out = {"parquet": str(tmp_path / "summary.parquet"), "markdown": str(tmp_path / "summary.md")}
    run("training.summarize_production", {"folders": [str(model), str(none)]}, out)
    table = pd.read_parquet(out["parquet"])[["side", "vin", "no_model"]]
    assert table.astype(object).where(table.notna(), None).to_dict(orient="records") == [
        {"side": "high", "vin": "LGBM-BTCUSDT-H5-X", "no_model": None},
        {"side": "low", "vin": None, "no_model": "no trained stage-1 variant (x)"},
    ]
    text = Path(out["markdown"]).read_text()
    assert text.startswith("# Production models: 1 (symbol, window, side), 1 passed the gates")
    assert text.endswith(
        "Without a model (never registered): 1 (symbol, window, side)\n\n"
        "- BTCUSDT w5 low: no trained stage-1 variant (x)\n"
    )
    assert "LGBM-BTCUSDT-H5-X" in text and "| low |" not in text  # the no-model side is not a table row
