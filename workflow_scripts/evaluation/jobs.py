"""Entries of rules/evaluation.smk: snapshot_costs, evaluate_stage1, pick_best_variant, report_best_variant,
plot_best_variant, summarize_symbol, summarize_best_variants, summarize_evaluation."""

from pathlib import Path

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.evaluation.backtest import plot_equity, plot_no_model
from workflow_scripts.evaluation.best_variant import (
    best_of,
    headline_metrics,
    report_of,
    summary_table,
    to_markdown,
)
from workflow_scripts.evaluation.costs import ConfigCostProvider, cost_snapshot
from workflow_scripts.evaluation.variant_evaluation import (
    evaluate_window,
    run_summary,
    test_result_with_curves,
    variant_vin,
)
from workflow_scripts.job import each_side
from workflow_scripts.training.combination import no_model_reason
from workflow_scripts.training.stage1 import METRICS_FILE, verified_model_sha256


def snapshot_costs(job) -> None:
    """The costs of one symbol (params.table: its slice of the costs config), saved for evaluation."""
    artifacts.write_json(
        job.output.costs, cost_snapshot(ConfigCostProvider(job.params.table), job.wildcards.symbol)
    )


def evaluate_stage1(job) -> None:
    """Predictions of every variant of one (symbol, window) -> one result file each in output.results."""
    cfg, symbol, window = job.params.spec, job.wildcards.symbol, int(job.wildcards.window)
    target_ids = job.params.targets
    bars = pd.read_parquet(job.input.bars, columns=["timestamp", "close"])
    targets = pd.read_parquet(job.input.targets)
    split = artifacts.read_json(job.input.split)
    costs = artifacts.read_json(job.input.costs)
    stage1 = Path(job.input.stage1)
    # Every model is checked against the sha256 its training recorded before anything is written.
    model_sha256 = {t: verified_model_sha256(stage1 / t) for t in target_ids}
    predictions = {t: pd.read_parquet(stage1 / t / "predictions.parquet") for t in target_ids}
    results = evaluate_window(
        targets, bars["close"].to_numpy(), split, window, cfg["targets"], predictions, costs, cfg
    )
    data_end = bars["timestamp"].iloc[-1].isoformat()
    for target, result in results.items():
        if result["status"] == "evaluated":
            metrics = artifacts.read_json(stage1 / target / METRICS_FILE)
            result["vin"] = variant_vin(
                symbol,
                window,
                target,
                cfg["stage1_params"],
                result["grade"]["grade"],
                metrics["best_iteration"],
                data_end,
                model_sha256[target],
            )
        artifacts.write_json(Path(job.output.results) / f"{target}.json", result)


def pick_best_variant(job) -> None:
    """The variants of each side of one (symbol, window) (params.targets[side]) -> the side's choice, by
    validation AP only."""
    for one in each_side(job, single=("choice",)):
        stage1, target_ids = Path(one.input.stage1), job.params.targets[one.wildcards.side]
        metrics = [artifacts.read_json(stage1 / t / "metrics.json") for t in target_ids]
        w = one.wildcards
        artifacts.write_json(one.output.choice, best_of(w.symbol, int(w.window), w.side, metrics))


def report_best_variant(job) -> None:
    """Each side's choice -> its report: the same ranking with each variant's test AP and after-cost
    evaluation."""
    for one in each_side(job, single=("choice", "report")):
        stage1, evaluated = Path(one.input.stage1), Path(one.input.evaluations)
        target_ids = job.params.targets[one.wildcards.side]
        metrics = [artifacts.read_json(stage1 / t / "metrics.json") for t in target_ids]
        evaluations = {t: artifacts.read_json(evaluated / f"{t}.json") for t in target_ids}
        artifacts.write_json(
            one.output.report, report_of(artifacts.read_json(one.input.choice), metrics, evaluations)
        )


def plot_best_variant(job) -> None:
    """Equity curve after costs, with drawdown, of each side's chosen variant."""
    shared = {}  # the files both sides read alike, read once (_side_tables)
    for one in each_side(job, single=("report", "plot")):
        _plot_choice(one, shared)


def _side_tables(job, shared: dict) -> dict:
    """Bars, targets, split and cost snapshot of the (symbol, window), read at the first side's call."""
    if not shared:
        shared["bars"] = pd.read_parquet(job.input.bars, columns=["timestamp", "close"])
        shared["targets"] = pd.read_parquet(job.input.targets)
        shared["split"] = artifacts.read_json(job.input.split)
        shared["costs"] = artifacts.read_json(job.input.costs)
    return shared


def _plot_choice(job, shared: dict) -> None:
    choice = artifacts.read_json(job.input.report)
    reason = no_model_reason(choice)
    if reason:
        name = f"{choice['symbol']} w{choice['window']} {choice['side']}"
        plot_no_model(job.output.plot, name, reason)
        print(f"{job.output.plot}: {name} has no model: {reason}")
        return
    cfg = job.params.spec
    tables = _side_tables(job, shared)
    bars = tables["bars"]
    target = choice["best"]["target"]
    evaluated = artifacts.read_json(Path(job.input.evaluations) / f"{target}.json")
    predictions = pd.read_parquet(Path(job.input.stage1) / target / "predictions.parquet")
    result = test_result_with_curves(
        tables["targets"],
        bars["close"].to_numpy(),
        tables["split"],
        choice["window"],
        cfg["targets"],
        target,
        predictions,
        tables["costs"],
        cfg,
        evaluated,
    )
    title = f"{choice['symbol']} w{choice['window']} {target} ({evaluated.get('vin')})"
    plot_equity(job.output.plot, result, title, bars["timestamp"].to_numpy())


def _summarize_choices(job) -> None:
    """Choice reports -> parquet and markdown tables, plus CSV and headline metrics where the rule names
    them."""
    table = summary_table([artifacts.read_json(p) for p in job.input.reports])
    artifacts.write_parquet(job.output.parquet, table)
    artifacts.write_text(job.output.markdown, to_markdown(table, job.params.title))
    if getattr(job.output, "csv", None):
        artifacts.write_text(job.output.csv, table.to_csv(index=False))
    if getattr(job.output, "metrics", None):
        artifacts.write_json(job.output.metrics, headline_metrics(table))  # for `dvc metrics show`


def summarize_symbol(job) -> None:
    """The choices of one symbol -> parquet and markdown tables."""
    _summarize_choices(job)


def summarize_best_variants(job) -> None:
    """Every choice -> parquet, CSV and markdown tables and the headline metrics."""
    _summarize_choices(job)


def summarize_evaluation(job) -> None:
    """Gate verdicts, grades and the chosen variants of the whole run."""
    files = sorted(p for d in job.input.evaluations for p in Path(d).glob("*.json"))
    summary = run_summary(
        [artifacts.read_json(p) for p in files],
        [artifacts.read_json(p) for p in job.input.reports],
        job.params.grades,
    )
    skipped = job.params.skipped
    summary["skipped"] = skipped
    artifacts.write_json(job.output.json, summary)
    gates = summary["gates"]
    lines = [
        "# Evaluation after costs",
        "",
        f"**{summary['message']}**",
        "",
        f"Chosen variants (best validation AP per symbol, window and side) passing the gates: "
        f"{summary['chosen_passed']} of {len(summary['chosen'])}.",
        "",
        "Failed gates (count of variants): "
        + (", ".join(f"{k} {v}" for k, v in gates["failure_reasons"].items()) or "none"),
        "",
        "Grades of all evaluated variants: "
        + ", ".join(f"{k} {v}" for k, v in summary["grade_counts"].items()),
        "",
    ]
    table = to_markdown(pd.DataFrame(summary["chosen"]), "Chosen variants").split("\n", 2)[2]
    text = "\n".join(lines) + "\n## Chosen variants\n" + table
    if skipped:  # planned out (rules/common.smk plan_universe, workflow_scripts/data/universe.py)
        text += (
            "\n## Left out of the plan (too few bars)\n\n"
            + "\n".join(
                f"- {s['symbol']}"
                + ("" if s["window"] is None else f" window {s['window']}")
                + f": {s['reason']}"
                for s in skipped
            )
            + "\n"
        )
    artifacts.write_text(job.output.markdown, text)
    print(summary["message"])
