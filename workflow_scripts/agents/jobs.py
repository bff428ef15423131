"""Entries of rules/agents.smk: train_cnn_lstm, tune_agent, evaluate_agent.

Data of one symbol: the feature table (results/features/{symbol}.parquet, the selected columns), the bars'
closes and timestamps (results/ingest/{symbol}.parquet, same rows: bar positions), the segments of the split
of the configured window (results/splits/{symbol}/w{window}.json) and the cost snapshot
(results/costs/{symbol}.json). The agents observe the CNN-LSTM embeddings, standardised with the train
segment's statistics."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.agents.agents import ALGORITHMS, score_segment, train_agent
from workflow_scripts.agents.cnn_lstm import (
    CnnLstmConfig,
    embed_bars,
    parity,
    scripted_bytes,
    train_extractor,
)
from workflow_scripts.agents.environment import EnvSettings, TradingEnv, market_data, standardise
from workflow_scripts.agents.tuning import StudySetup, run_agent_study
from workflow_scripts.evaluation.costs import costs_from_snapshot
from workflow_scripts.job import keyed
from workflow_scripts.targets.swing_targets import segment_position

EMBEDDING_PREFIX = "cnn_lstm_"


def _segments(split_path) -> dict[str, tuple[int, int]]:
    split = artifacts.read_json(split_path)
    return {s: (int(split[s]["lo"]), int(split[s]["hi"])) for s in ("train", "validation", "test")}


def _bars(path) -> pd.DataFrame:
    return pd.read_parquet(path, columns=["timestamp", "close"])


def _data_date(bars: pd.DataFrame) -> str:
    """The trial codes' DATE: the last bar's UTC date, so a rerun on the same data keeps every code."""
    return pd.Timestamp(bars["timestamp"].iloc[-1]).strftime("%Y%m%d")


def _agent_market(job, segments):
    """MarketData of the agents: the embeddings standardised on the train segment."""
    bars = _bars(job.input.bars)
    table = pd.read_parquet(job.input.embeddings)
    if len(table) != len(bars) or not (table["timestamp"].to_numpy() == bars["timestamp"].to_numpy()).all():
        raise ValueError(f"{job.input.embeddings}: rows are not the bars of {job.input.bars}")
    columns = [c for c in table.columns if c.startswith(EMBEDDING_PREFIX)]
    features, _ = standardise(table[columns].to_numpy(dtype=np.float64), segments["train"])
    return bars, market_data(
        features, bars["close"].to_numpy(), bars["timestamp"], job.params.spec["sigma_bars"]
    )


def train_cnn_lstm(job) -> None:
    """The symbol's CNN-LSTM on its selected features -> model.pt, embeddings of every bar, metadata."""
    spec = job.params.spec
    cfg = CnnLstmConfig.from_mapping(spec["cnn_lstm"])
    columns = artifacts.read_json(job.input.selected)["features"]
    table = pd.read_parquet(job.input.features, columns=["timestamp", *columns])
    bars = _bars(job.input.bars)
    if len(table) != len(bars):
        raise ValueError(f"{job.input.features} has {len(table)} rows, {job.input.bars} {len(bars)}")
    segments = _segments(job.input.split)
    x = table[columns].to_numpy(dtype=np.float32)
    seg_pos = segment_position(table["timestamp"])
    trained = train_extractor(
        x, bars["close"].to_numpy(), seg_pos, segments["train"], segments["validation"], cfg
    )
    data = scripted_bytes(trained.net)
    max_diff = parity(trained.net, data, x[: min(len(x), 2048)], seg_pos[: min(len(x), 2048)])
    embeddings = embed_bars(trained.net, x, seg_pos)
    out = pd.DataFrame(embeddings, columns=[f"{EMBEDDING_PREFIX}{i}" for i in range(embeddings.shape[1])])
    artifacts.write_bytes(job.output.model, data)
    artifacts.write_parquet(job.output.embeddings, pd.concat([table[["timestamp"]], out], axis=1))
    artifacts.write_json(
        job.output.metadata,
        {
            "format": "swingflow-cnn-lstm/1",
            "symbol": job.wildcards.symbol,
            "feature_names": columns,
            "config": cfg.to_dict(),
            "history": trained.history,
            "segments": segments,
            "parity_max_abs_diff": max_diff,
            "model_sha256": artifacts.sha256_file(job.output.model),
            "depends_on": {"features": str(job.input.features), "selected": str(job.input.selected)},
        },
    )


def tune_agent(job) -> None:
    """One Optuna study of one agent kind on one symbol (validation only) -> result and the chosen model."""
    spec, kind = job.params.spec, job.wildcards.agent
    segments = _segments(job.input.split)
    bars, data = _agent_market(job, segments)
    setup = StudySetup(
        data=data,
        train=segments["train"],
        validation=segments["validation"],
        costs=costs_from_snapshot(artifacts.read_json(job.input.costs)),
        kind=kind,
        env=spec["env"] | {"continuous": kind != "ppo" or spec["env"].get("continuous", False)},
        agent=spec["agent"],
        seed=int(spec["seed"]),
        objective=spec["study"]["objective"],
        min_trades=int(spec["study"]["min_trades"]),
        grades=job.params.grades,
        date=_data_date(bars),
    )
    study = spec["study"]
    result = run_agent_study(
        setup,
        journal_path=Path(job.output.result).with_suffix(".journal"),  # not an output: survives a failed job
        study_name=f"agents-{job.wildcards.symbol}-{kind}",
        space=spec["space"],
        n_trials=study["trials"],
        minutes=study["minutes"],
        sampler_seed=int(study["seed"]),
        sampler=study["sampler"],
        stale_after_s=float(study["stale_after_s"]),
    )
    if result["best"] is None:
        raise ValueError(
            f"no {kind} trial for {job.wildcards.symbol} reached {setup.min_trades} validation trades"
        )
    # Same seed, same parameters, CPU: the retrained model is the best trial's model.
    sampled = result["best"]["params"]
    model = train_agent(
        TradingEnv(data, setup.train, setup.costs, setup.settings(sampled)), setup.params(sampled), setup.seed
    )
    buffer = io.BytesIO()
    model.save(buffer)
    artifacts.write_bytes(job.output.model, buffer.getvalue())
    result["chosen"] = {
        "code": result["best"]["code"],
        "params": setup.params(sampled).to_dict(),
        "env": setup.settings(sampled, scoring=True).to_dict(),
        "seed": setup.seed,
    }
    artifacts.write_json(job.output.result, result)


def evaluate_agent(job) -> None:
    """The symbol's best agent on validation (over every kind) evaluated once on the test segment; the DSR
    counts every agent trial of the symbol."""
    studies = [artifacts.read_json(p) for p in job.input.studies]
    models = keyed([s["kind"] for s in studies], job.input.models, "/{}.zip")
    best = max(studies, key=lambda s: (s["best"]["value"], -sorted(models).index(s["kind"])))
    segments = _segments(job.input.split)
    _, data = _agent_market(job, segments)
    costs = costs_from_snapshot(artifacts.read_json(job.input.costs))
    chosen = best["chosen"]
    env = TradingEnv(data, segments["test"], costs, EnvSettings.from_mapping(chosen["env"]))
    model = ALGORITHMS[best["kind"]].load(models[best["kind"]], device="cpu")
    sharpes = [s for study in studies for s in study["trial_sharpes"] if s is not None]
    result = score_segment(
        model,
        env,
        n_trials=sum(s["n_trials"] for s in studies),
        trial_sharpes=sharpes,
        grades=job.params.grades,
        gate_profile=job.params.gates,
    )
    result |= {
        "scored_on": "test",
        "symbol": job.wildcards.symbol,
        "kind": best["kind"],
        "code": chosen["code"],
        "params": chosen["params"],
        "validation": best["best"]["validation"],
        "chosen_by": f"max validation {best['objective']} over kinds {sorted(models)}",
    }
    artifacts.write_json(job.output.result, result)
