"""Entries of rules/training.smk: train_stage1, fit_shared_encoder, tune_stage2/3/4, fit_production,
evaluate_production, summarize_production, fit_ensemble."""

import json
from pathlib import Path

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.evaluation.best_variant import to_markdown
from workflow_scripts.job import each_side, keyed
from workflow_scripts.models.folder import no_model, split_no_model, write_no_model
from workflow_scripts.models.shared_encoder import (
    fit_shared_encoder as fit_encoder,
)
from workflow_scripts.models.shared_encoder import (
    save_shared_encoder,
    training_cut,
    training_range,
    training_rows,
)
from workflow_scripts.training import production
from workflow_scripts.training.combination import load_combination, no_model_reason, no_model_record
from workflow_scripts.training.ensemble_production import build_folder
from workflow_scripts.training.stage1 import METRICS_FILE, MODEL_FILE, train_window
from workflow_scripts.training.trials import read_slot_trials
from workflow_scripts.training.tuning_stages import no_model_result, run_tuning_stage, stage2_representative


def train_stage1(job) -> None:
    """One folder per variant: model.txt (LightGBM text; empty when skipped), metrics.json (deterministic: no
    timings; model_sha256), split_indices.json, predictions.parquet (validation and test event bars),
    training_log.json (fit seconds and other facts that differ between runs)."""
    split = artifacts.read_json(job.input.split)
    targets = pd.read_parquet(job.input.targets)
    columns = ["timestamp"] + json.loads(Path(job.input.selected).read_text())["features"]
    features = pd.read_parquet(job.input.features, columns=columns)
    results = train_window(features, targets, split, job.params.targets, job.params.spec, threads=job.threads)
    outdir = Path(job.output.variants)
    for r in results:
        folder = outdir / r.target
        log = {"fit_seconds": r.metrics.pop("fit_seconds", None), "threads": job.threads}
        artifacts.write_text(folder / MODEL_FILE, r.model_text)
        r.metrics["model_sha256"] = artifacts.sha256_file(
            folder / MODEL_FILE
        )  # checked by whoever uses the model
        artifacts.write_json(folder / "split_indices.json", r.split_indices)
        artifacts.write_parquet(folder / "predictions.parquet", r.predictions)
        artifacts.write_json(folder / "training_log.json", log)
        artifacts.write_json(folder / METRICS_FILE, r.metrics)  # last: its presence means the folder is whole


def fit_shared_encoder(job) -> None:
    spec, symbols, windows_of = job.params.spec, job.params.symbols, job.params.windows_of
    features = {s: pd.read_parquet(p) for s, p in keyed(symbols, job.input.features, "/{}.").items()}
    splits = job.input.splits
    expected = sum(len(windows_of[s]) for s in symbols)
    if len(splits) != expected:
        raise ValueError(f"need one split per symbol and trainable window ({expected}), got {len(splits)}")
    ranges = {}
    for s in symbols:
        per_window = keyed(windows_of[s], [p for p in splits if f"/{s}/" in p], "/w{}.")
        ranges[s] = training_range([artifacts.read_json(p) for p in per_window.values()])
    encoder = fit_encoder(training_rows(features, ranges), spec)
    out = job.output.encoder
    version = save_shared_encoder(out, encoder)
    print(
        f"{spec['kind']} encoder {out}: {len(encoder.columns)} columns, {encoder.n_train_rows} training "
        f"rows, {len(encoder.output_columns)} outputs, version {version}; training rows {ranges}, all coins "
        f"cut at {training_cut(features, ranges)} (the earliest training end)"
    )


def _tune(job, stage: str, shared: dict | None = None) -> None:
    """Run (or resume) one study and write its result. Stage 2 gets the stage-1 choices of every symbol of one
    window and picks the representative combination (tuning.representative_rule); stages 3 and 4 get one
    combination's files and the previous stage's result. The study's journal lies beside the result. A
    combination without a trained stage-1 variant (a window without any, for stage 2) writes a no-model
    result instead (tuning_stages.no_model_result)."""
    cfg, inp = job.params.spec, job.input
    encoder = inp.encoder[0] if inp.encoder else None
    if stage == "stage2":
        symbols = job.params.symbols
        tokens = {"features": "/{}.", "selected": "/{}/", "targets": "/{}/", "splits": "/{}/"}
        files = {name: keyed(symbols, getattr(inp, name), token) for name, token in tokens.items()}
        choices = {p: artifacts.read_json(p) for p in inp.choices}
        if all(no_model_reason(c) for c in choices.values()):
            window = int(job.wildcards.window)
            reason = f"no combination of w{window} has a trained stage-1 variant ({len(choices)} choices)"
            _write_no_model_result(job, no_model_result(stage, {"window": window, "reason": reason}))
            return
        choice = stage2_representative(list(choices.values()), cfg["representative_rule"])
        choice_path = next(p for p, c in choices.items() if c is choice)
        s = choice["symbol"]
        comb = load_combination(
            choice_path,
            files["features"][s],
            files["selected"][s],
            files["targets"][s],
            files["splits"][s],
            encoder,
        )
        key, previous = f"w{choice['window']}", None
    else:
        choice = artifacts.read_json(inp.choice)
        record = no_model_record(choice)
        if record is not None:
            _write_no_model_result(job, no_model_result(stage, record))
            return
        comb = load_combination(
            inp.choice, inp.features, inp.selected, inp.targets, inp.split, encoder, shared=shared
        )
        key = f"{choice['symbol']}-w{choice['window']}-{choice['side']}"
        previous = artifacts.read_json(inp.previous)
    journal = str(Path(job.output.result).with_suffix(".journal"))
    result = run_tuning_stage(
        stage,
        comb,
        cfg,
        journal_path=journal,
        previous=previous,
        key=key,
        threads=job.threads,
    )
    result["representative_rule"] = cfg["representative_rule"] if stage == "stage2" else None
    artifacts.write_json(job.output.result, result)
    short = "" if result["stopped_by"] == "trial_budget" else " before its trial budget: rerun to continue"
    print(
        f"{stage} {key}: {result['finished_trials']}/{result['budget']['n_trials']} trials, stopped by "
        f"{result['stopped_by']}{short}"
    )


def _write_no_model_result(job, result: dict) -> None:
    artifacts.write_json(job.output.result, result)
    print(f"{job.output.result}: no model, nothing to tune: {result['no_model']}")


def tune_stage2(job) -> None:
    _tune(job, "stage2")


# A stage-3/4 or production job does both sides of a (symbol, window) one after the other; the inputs and
# outputs that are one per side (rules/common.smk per_side) become each side's own path.
PER_SIDE = ("choice", "previous", "stage3", "fit", "result", "folder")


def tune_stage3(job) -> None:
    shared = {}  # the sides' common files, read once (combination.load_combination)
    for one in each_side(job, single=PER_SIDE):
        _tune(one, "stage3", shared)


def tune_stage4(job) -> None:
    shared = {}
    for one in each_side(job, single=PER_SIDE):
        _tune(one, "stage4", shared)


def _combination_and_tuning(job, shared: dict):
    inp = job.input
    encoder = inp.encoder[0] if inp.encoder else None
    comb = load_combination(
        inp.choice, inp.features, inp.selected, inp.targets, inp.split, encoder, shared=shared
    )
    tuning = {
        stage: artifacts.read_json(p)
        for stage, p in (("stage2", inp.stage2), ("stage3", inp.stage3), ("stage4", inp.previous))
    }
    return comb, tuning, encoder


def fit_production(job) -> None:
    """The evaluated model and its deployment refit of each side's best combination (production.write_fit)."""
    shared = {}  # the sides' common files, read once (combination.load_combination)
    for one in each_side(job, single=PER_SIDE):
        _fit_production(one, shared)


def _fit_production(job, shared: dict) -> None:
    record = no_model_record(artifacts.read_json(job.input.choice))
    if record is not None:
        write_no_model(job.output.fit, record)
        print(f"{job.output.fit}: no model: {record['reason']}")
        return
    comb, tuning, _ = _combination_and_tuning(job, shared)
    tuned, stage = production.tuned_params(comb, tuning)
    trained, refit = production.fit(comb, tuned, job.params.model, threads=job.threads)
    production.write_fit(job.output.fit, trained, refit)
    print(
        f"{job.output.fit}: {trained.model.kind} with {stage} parameters, best iteration "
        f"{trained.model.best_iteration}, refit {'none' if refit is None else refit.document['rounds']}"
    )


def evaluate_production(job) -> None:
    """Each side's fit evaluated once on test with the cost snapshot -> its production folder
    (docs/REGISTRY.md)."""
    shared = {}
    for one in each_side(job, single=PER_SIDE):
        _evaluate_production(one, shared)


def _evaluate_production(job, shared: dict) -> None:
    spec, inp, outdir = job.params.spec, job.input, job.output.folder
    record = no_model(inp.fit)
    if record is not None:
        write_no_model(outdir, record)
        print(f"{outdir}: no model: {record['reason']}")
        return
    comb, tuning, encoder = _combination_and_tuning(job, shared)
    trained, refit = production.read_fit(inp.fit)
    if "bars" not in shared:
        shared["bars"] = pd.read_parquet(inp.bars, columns=["timestamp", "close"])
    bars = shared["bars"]
    evaluation = production.assemble(
        outdir,
        comb,
        trained,
        refit,
        tuning,
        read_slot_trials(
            keyed(job.params.windows, inp.slot_reports, "/w{}/"),
            {
                stage: keyed(job.params.windows, getattr(inp, f"slot_{stage}"), token)
                for stage, token in (("stage2", "/w{}."), ("stage3", "/w{}/"), ("stage4", "/w{}/"))
            },
            job.params.ensemble_candidates,
        ),
        bars["close"].to_numpy(),
        artifacts.read_json(inp.costs),
        spec,
        data_version=artifacts.sha256_file(inp.bars),
        data_end=bars["timestamp"].iloc[-1].isoformat(),
        threads=job.threads,
        encoder_path=encoder,
    )
    print(f"{outdir}: grade {evaluation['grade']['grade']}, gate passed {evaluation['gate']['passed']}")


def summarize_production(job) -> None:
    """The production models, then the (symbol, window, side) without a model and why (column `no_model`)."""
    models, none = split_no_model(job.input.folders)
    rows = [
        production.summary_row(
            artifacts.read_json(Path(f) / "config.json"), artifacts.read_json(Path(f) / "metrics.json")
        )
        | {"no_model": None}
        for f in models
    ]
    rows += [{k: r[k] for k in ("symbol", "window", "side")} | {"no_model": r["reason"]} for r in none]
    table = production.summary_table(rows)
    artifacts.write_parquet(job.output.parquet, table)
    shown = table[table["no_model"].isna()].drop(columns="no_model")
    passed = int(shown["gate_passed"].astype(bool).sum()) if len(shown) else 0
    title = (
        f"Production models: {len(shown)} (symbol, window, side), {passed} passed the gates "
        "(test segment, after costs)"
    )
    text = to_markdown(shown, title)
    if none:
        text += f"\nWithout a model (never registered): {len(none)} (symbol, window, side)\n\n" + "".join(
            f"- {r['symbol']} w{r['window']} {r['side']}: {r['reason']}\n" for r in none
        )
    artifacts.write_text(job.output.markdown, text)


def fit_ensemble(job) -> None:
    """The (symbol, side)'s ensemble over its windows' production models; windows without a model are left
    out, and fewer than two models left make a no-model folder."""
    windows, inp, outdir = job.params.windows, job.input, job.output.folder
    folders = keyed(windows, inp.production, "/w{}/")
    members = {w: f for w, f in folders.items() if no_model(f) is None}
    if len(members) < 2:
        symbol, side = job.wildcards.symbol, job.wildcards.side
        left_out = [f"w{w}" for w in folders if w not in members]
        reason = f"an ensemble needs 2 windows with a model; {left_out} have none"
        write_no_model(outdir, {"symbol": symbol, "window": "all", "side": side, "reason": reason})
        print(f"{outdir}: no model: {reason}")
        return
    metrics = build_folder(
        outdir,
        members,
        pd.read_parquet(inp.features),
        {w: pd.read_parquet(p) for w, p in keyed(windows, inp.targets, "/w{}.").items()},
        {w: artifacts.read_json(p) for w, p in keyed(windows, inp.splits, "/w{}.").items()},
        pd.read_parquet(inp.bars, columns=["timestamp", "close"]),
        artifacts.read_json(inp.costs),
        job.params.spec,
        data_version=artifacts.sha256_file(inp.bars),
    )
    print(
        f"{outdir}: {metrics['vin']} ({metrics['ensemble_validation_scores']}), grade "
        f"{metrics['grade']['grade']}, gate passed {metrics['gate']['passed']}"
    )
