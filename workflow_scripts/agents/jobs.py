"""Entries of rules/agents.smk: train_cnn_lstm, tune_agent, evaluate_agent, fit_agent_ensemble,
evaluate_agent_ensemble, tune_hybrid, evaluate_hybrid.

Data of one symbol: the feature table (results/features/{symbol}.parquet, the selected columns), the bars'
closes and timestamps (results/ingest/{symbol}.parquet, same rows: bar positions), the segments of the split
of the configured window (results/splits/{symbol}/w{window}.json) and the cost snapshot
(results/costs/{symbol}.json). The agents observe the CNN-LSTM embeddings, standardised with the train
segment's statistics; the hybrid adds the production models' class probabilities (hybrid.py)."""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.agents import export, package
from workflow_scripts.agents.agents import ALGORITHMS, score_on_validation, score_segment, train_agent
from workflow_scripts.agents.cnn_lstm import (
    CnnLstmConfig,
    embed_bars,
    parity,
    scripted_bytes,
    train_extractor,
)
from workflow_scripts.agents.ensemble import (
    EnsemblePolicy,
    Member,
    candidate_value,
    choose_on_validation,
    ensemble_settings,
    ranked_trials,
)
from workflow_scripts.agents.environment import (
    N_STATE,
    EnvSettings,
    TradingEnv,
    market_data,
    standardise,
)
from workflow_scripts.agents.hybrid import (
    check_train_only,
    dependencies,
    hybrid_segments,
    production_probabilities,
)
from workflow_scripts.agents.package import write_model_folder
from workflow_scripts.agents.paper import scripted_policy
from workflow_scripts.agents.replay import evidence_document
from workflow_scripts.agents.tuning import NO_SCORE, StudySetup, run_agent_study
from workflow_scripts.evaluation.costs import costs_from_snapshot
from workflow_scripts.job import keyed
from workflow_scripts.models.folder import split_no_model
from workflow_scripts.models.torch_models import load_scripted
from workflow_scripts.targets.swing_targets import segment_position

EMBEDDING_PREFIX = "cnn_lstm_"
STATE_NAMES = ("position", "unrealised_log_return", "log1p_bars_in_trade")
ENSEMBLE_FILE = "agent_ensemble.json"


def _segments(split_path) -> dict[str, tuple[int, int]]:
    split = artifacts.read_json(split_path)
    return {s: (int(split[s]["lo"]), int(split[s]["hi"])) for s in ("train", "validation", "test")}


def _bars(path) -> pd.DataFrame:
    return pd.read_parquet(path, columns=["timestamp", "close"])


def _data_date(bars: pd.DataFrame) -> str:
    """The trial codes' DATE: the last bar's UTC date, so a rerun on the same data keeps every code."""
    return pd.Timestamp(bars["timestamp"].iloc[-1]).strftime("%Y%m%d")


def _embeddings(job, bars: pd.DataFrame) -> pd.DataFrame:
    table = pd.read_parquet(job.input.embeddings)
    if len(table) != len(bars) or not (table["timestamp"].to_numpy() == bars["timestamp"].to_numpy()).all():
        raise ValueError(f"{job.input.embeddings}: rows are not the bars of {job.input.bars}")
    return table[[c for c in table.columns if c.startswith(EMBEDDING_PREFIX)]]


def _market(job, bars: pd.DataFrame, columns: pd.DataFrame, fit: tuple[int, int]):
    """MarketData of `columns` standardised on the bars [fit) and the observation's description."""
    features, stats = standardise(columns.to_numpy(dtype=np.float64), fit)
    data = market_data(features, bars["close"].to_numpy(), bars["timestamp"], job.params.spec["sigma_bars"])
    return data, {"features": list(columns.columns), "standardised_on": list(fit)} | stats


def _agent_market(job, segments):
    """The base agents' data: the embeddings standardised on the train segment."""
    bars = _bars(job.input.bars)
    data, observation = _market(job, bars, _embeddings(job, bars), segments["train"])
    return bars, data, observation


def _setup(job, kind, data, train, validation, costs, date, code_prefix="") -> StudySetup:
    spec = job.params.spec
    return StudySetup(
        data=data,
        train=train,
        validation=validation,
        costs=costs,
        kind=kind,
        env=spec["env"] | {"continuous": kind != "ppo" or spec["env"]["continuous"]},
        agent=spec["agent"],
        seed=int(spec["seed"]),
        objective=spec["study"]["objective"],
        min_trades=int(spec["study"]["min_trades"]),
        grades=job.params.grades,
        date=date,
        code_prefix=code_prefix,
    )


def _costs(job):
    return costs_from_snapshot(artifacts.read_json(job.input.costs))


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


def _tune_and_export(job, setup: StudySetup, study_name: str, journal: Path, observation: dict) -> dict:
    """Run the study, retrain its best trial (same seed and parameters: the same model), save it as the SB3
    zip (job.output.model) and its TorchScript policy (job.output.policy, parity-checked on the validation
    observations the policy visits); the study summary with `chosen` and `export`."""
    spec = job.params.spec
    result = run_agent_study(
        setup, journal_path=journal, study_name=study_name, space=spec["space"], study=spec["study"]
    )
    if result["best"] is None:
        raise ValueError(
            f"no {study_name} trial reached {setup.min_trades} trades on its choice bars {setup.validation}"
        )
    sampled = result["best"]["params"]
    model = train_agent(
        TradingEnv(setup.data, setup.train, setup.costs, setup.settings(sampled)),
        setup.params(sampled),
        setup.seed,
    )
    buffer = io.BytesIO()
    model.save(buffer)
    policy = export.policy_bytes(model)
    scoring = TradingEnv(setup.data, setup.validation, setup.costs, setup.settings(sampled, scoring=True))
    checked = export.parity(model, policy, export.observations(model, scoring))
    artifacts.write_bytes(job.output.model, buffer.getvalue())
    artifacts.write_bytes(job.output.policy, policy)
    settings = setup.settings(sampled, scoring=True)
    result["chosen"] = {
        "code": result["best"]["code"],
        "params": setup.params(sampled).to_dict(),
        "env": settings.to_dict(),
        "seed": setup.seed,
        # what a consumer of the TorchScript policy feeds it (environment.py's observation)
        "observation": observation
        | {
            "lookback": settings.lookback,
            "layout": f"{settings.lookback} rows x {len(observation['features'])} features (oldest first), "
            f"then {list(STATE_NAMES)}",
            "state": list(STATE_NAMES),
            "obs_clip": settings.obs_clip,
            "size": settings.lookback * len(observation["features"]) + N_STATE,
        },
    }
    result["export"] = {
        "policy_sha256": artifacts.sha256_file(job.output.policy),
        "outputs": "forward: position in [-1, 1]; action: SB3's deterministic action; "
        "weights: (flat, long, short)",
        "parity": checked | {"on": "validation observations of the deterministic policy"},
    }
    return result


def tune_agent(job) -> None:
    """One Optuna study of one agent kind on one symbol (validation only) -> result, the chosen model (SB3
    zip) and its TorchScript policy."""
    kind = job.wildcards.agent
    segments = _segments(job.input.split)
    bars, data, observation = _agent_market(job, segments)
    setup = _setup(job, kind, data, segments["train"], segments["validation"], _costs(job), _data_date(bars))
    result = _tune_and_export(
        job,
        setup,
        f"agents-{job.wildcards.symbol}-{kind}",
        Path(job.output.result).with_suffix(".journal"),  # not an output: survives a failed job
        observation,
    )
    artifacts.write_json(job.output.result, result)


def _all_trials(studies) -> tuple[int, list[float]]:
    """(number of agent trials, their validation per-trade Sharpes) over the symbol's studies."""
    sharpes = [s for study in studies for s in study["trial_sharpes"] if s is not None]
    return sum(s["n_trials"] for s in studies), sharpes


def _ensemble_trials(studies, doc) -> tuple[int, list[float]]:
    """The ensemble's DSR trials: every agent trial of the symbol plus every ensemble candidate (each one
    more configuration tried on validation), with their validation per-trade Sharpes."""
    n_trials, sharpes = _all_trials(studies)
    candidates = doc["choice"]["candidates"]
    sharpes += [s for c in candidates if (s := c["validation"]["sharpe_per_trade"]) is not None]
    return n_trials + len(candidates), sharpes


def _write_test_result(job, policy, env: TradingEnv, trials: tuple[int, list[float]], **record) -> None:
    """The one test evaluation of a chosen policy (agent, ensemble, hybrid): score_segment on the test env
    with the DSR over `trials` (count, validation Sharpes), the run's grades and gate, plus `record`."""
    n_trials, sharpes = trials
    result = score_segment(
        policy,
        env,
        n_trials=n_trials,
        trial_sharpes=sharpes,
        grades=job.params.grades,
        gate_profile=job.params.gates,
    )
    result |= {"scored_on": "test", "symbol": job.wildcards.symbol} | record
    artifacts.write_json(job.output.result, result)


def evaluate_agent(job) -> None:
    """The symbol's best agent on validation (over every kind) evaluated once on the test segment; the DSR
    counts every agent trial of the symbol."""
    studies = [artifacts.read_json(p) for p in job.input.studies]
    models = keyed([s["kind"] for s in studies], job.input.models, "/{}.zip")
    best = max(studies, key=lambda s: (s["best"]["value"], -sorted(models).index(s["kind"])))
    segments = _segments(job.input.split)
    _, data, _ = _agent_market(job, segments)
    chosen = best["chosen"]
    env = TradingEnv(data, segments["test"], _costs(job), EnvSettings.from_mapping(chosen["env"]))
    model = ALGORITHMS[best["kind"]].load(models[best["kind"]], device="cpu")
    _write_test_result(
        job,
        model,
        env,
        _all_trials(studies),
        kind=best["kind"],
        code=chosen["code"],
        params=chosen["params"],
        validation=best["best"]["validation"],
        chosen_by=f"max validation {best['objective']} over kinds {sorted(models)}",
    )


# -- stage 4: the agent ensemble -----------------------------------------------------------------------------
def _member(job, trial, study, zip_path, data, segments, costs, date) -> Member:
    """A trial's policy: the study's saved model for its best trial, else retrained (same seed and
    parameters); either way re-scored on validation, which must give the trial's recorded value."""
    kind = trial["kind"]
    setup = _setup(job, kind, data, segments["train"], segments["validation"], costs, date)
    params = trial["params"]
    if trial["number"] == study["best"]["number"]:
        model = ALGORITHMS[kind].load(zip_path, device="cpu")
    else:
        env = TradingEnv(data, segments["train"], costs, setup.settings(params))
        model = train_agent(env, setup.params(params), setup.seed)
    scoring = TradingEnv(data, segments["validation"], costs, setup.settings(params, scoring=True))
    value = candidate_value(
        score_on_validation(model, scoring, grades=setup.grades), setup.objective, setup.min_trades
    )
    if not math.isclose(value, trial["value"], rel_tol=1e-9, abs_tol=1e-12):
        raise ValueError(
            f"agent ensemble: trial {trial['code']} rescored {value} on validation, its study recorded "
            f"{trial['value']}: the retrained model is not the trial's (threads or library versions changed?)"
        )
    lookback = setup.settings(params).lookback
    return Member(trial["code"], kind, int(trial["number"]), value, lookback, export.policy_module(model))


def fit_agent_ensemble(job) -> None:
    """The symbol's agent ensemble chosen on validation (ensemble.py) -> a folder: agent_ensemble.json (the
    choice, every candidate's validation score, the members) + members/<code>.pt (TorchScript policies)."""
    spec, cfg = job.params.spec, job.params.spec["ensemble"]
    studies = [artifacts.read_json(p) for p in job.input.studies]
    kinds = [s["kind"] for s in studies]
    models = keyed(kinds, job.input.models, "/{}.zip")
    segments = _segments(job.input.split)
    bars, data, observation = _agent_market(job, segments)
    costs, date = _costs(job), _data_date(bars)
    by_kind = {s["kind"]: s for s in studies}
    ranked = ranked_trials(studies, kinds)[: int(cfg["max_members"])]
    members = [
        _member(job, t, by_kind[t["kind"]], models[t["kind"]], data, segments, costs, date) for t in ranked
    ]
    choice = choose_on_validation(
        members,
        data,
        segments["validation"],
        costs,
        env=spec["env"],
        max_members=int(cfg["max_members"]),
        methods=cfg["methods"],
        objective=spec["study"]["objective"],
        min_trades=int(spec["study"]["min_trades"]),
        grades=job.params.grades,
    )
    folder = Path(job.output.folder)
    chosen = members[: choice["chosen"]["k"]]
    listed = []
    for m in chosen:
        data_bytes = export.fresh_script_bytes(m.net, f"{export.__name__}:rebuild", "agent policy")
        artifacts.write_bytes(folder / "members" / f"{m.code}.pt", data_bytes)
        listed.append(
            {
                "code": m.code,
                "kind": m.kind,
                "trial": m.number,
                "validation_value": m.value,
                "lookback": m.lookback,
                "file": f"members/{m.code}.pt",
                "sha256": artifacts.sha256_file(folder / "members" / f"{m.code}.pt"),
            }
        )
    policy = EnsemblePolicy(chosen, choice["chosen"]["method"], data.features.shape[1])
    artifacts.write_json(
        folder / ENSEMBLE_FILE,
        {
            "format": "swingflow-agent-ensemble/1",
            "symbol": job.wildcards.symbol,
            "method": choice["chosen"]["method"],
            "members": listed,
            "lookback": policy.lookback,
            "env": ensemble_settings(spec["env"], policy.lookback).to_dict(),
            "observation": observation | {"state": list(STATE_NAMES)},
            "choice": choice,
            "n_candidates": len(choice["candidates"]),
            "n_agent_trials": _all_trials(studies)[0],
        },
    )


def _load_ensemble(folder: Path) -> tuple[dict, list[Member]]:
    doc = artifacts.read_json(folder / ENSEMBLE_FILE)
    members = []
    for m in doc["members"]:
        data = artifacts.read_verified(folder / m["file"], m["sha256"], folder / ENSEMBLE_FILE)
        members.append(
            Member(
                m["code"], m["kind"], m["trial"], m["validation_value"], m["lookback"], load_scripted(data)
            )
        )
    return doc, members


def evaluate_agent_ensemble(job) -> None:
    """The chosen ensemble (its TorchScript members) once on the test segment; the DSR counts every agent
    trial of the symbol and every ensemble candidate scored on validation."""
    folder = Path(job.input.ensemble)
    doc, members = _load_ensemble(folder)
    studies = [artifacts.read_json(p) for p in job.input.studies]
    segments = _segments(job.input.split)
    _, data, _ = _agent_market(job, segments)
    policy = EnsemblePolicy(members, doc["method"], data.features.shape[1])
    env = TradingEnv(data, segments["test"], _costs(job), EnvSettings.from_mapping(doc["env"]))
    candidates = doc["choice"]["candidates"]
    _write_test_result(
        job,
        policy,
        env,
        _ensemble_trials(studies, doc),
        kind="agent_ensemble",
        method=doc["method"],
        members=[m["code"] for m in doc["members"]],
        validation=doc["choice"]["chosen"]["validation"],
        chosen_by=f"max validation {doc['choice']['objective']} over {len(candidates)} candidates",
        dsr_trials={"agent_trials": _all_trials(studies)[0], "ensemble_candidates": len(candidates)},
    )


# -- stage 3: the hybrid -------------------------------------------------------------------------------------
def _production_folders(job) -> dict[str, str]:
    """{side: folder} of the production inputs (results/production/{symbol}/w{window}/{side}); the hybrid
    needs both sides' class probabilities, so a side without a model (models/folder.py) stops it, named."""
    _, none = split_no_model(job.input.production)
    if none:
        raise ValueError(
            "the hybrid needs a production model of both sides of agents.window; "
            + "; ".join(f"{r['folder']} has none: {r['reason']}" for r in none)
            + " (choose another agents window, or set hybrid.enabled: false)"
        )
    return {Path(p).name: str(p) for p in job.input.production}


def _hybrid_market(job, probabilities: pd.DataFrame, fit: tuple[int, int]):
    bars = _bars(job.input.bars)
    same = probabilities["timestamp"].to_numpy() == bars["timestamp"].to_numpy()
    if len(probabilities) != len(bars) or not same.all():
        raise ValueError(f"production probabilities: rows are not the bars of {job.input.bars}")
    columns = pd.concat([_embeddings(job, bars), probabilities.drop(columns="timestamp")], axis=1)
    data, observation = _market(job, bars, columns, fit)
    return bars, data, observation


def tune_hybrid(job) -> None:
    """The hybrid's study (hybrid.py: fit on the first part of validation, chosen on the rest) -> result with
    its dependencies, the SB3 zip, the TorchScript policy and the production probabilities of every bar."""
    spec = job.params.spec
    cfg = spec["hybrid"]
    segments = _segments(job.input.split)
    seg = hybrid_segments(segments["validation"], cfg["fit_share"])
    folders = _production_folders(job)
    last_train = {side: check_train_only(folder, seg["fit"][0]) for side, folder in folders.items()}
    probabilities = production_probabilities(folders, job.input.features)
    bars, data, observation = _hybrid_market(job, probabilities, seg["fit"])
    setup = _setup(job, cfg["kind"], data, seg["fit"], seg["select"], _costs(job), _data_date(bars), "H")
    fit_bars = seg["fit"][1] - seg["fit"][0]
    episode = setup.env["episode_bars"]
    if episode is not None and episode > fit_bars:  # a short validation segment: one window per episode
        setup = dataclasses.replace(setup, env=dict(setup.env) | {"episode_bars": fit_bars})
    result = _tune_and_export(
        job,
        setup,
        f"agents-{job.wildcards.symbol}-hybrid-{cfg['kind']}",
        Path(job.output.result).with_suffix(".journal"),
        observation,
    )
    artifacts.write_parquet(job.output.probabilities, probabilities)
    result |= {
        "hybrid": {
            "segments": {"fit": list(seg["fit"]), "select": list(seg["select"])},
            "trains_on": "the first fit_share of the validation segment (docs/AGENTS.md, Hybrid)",
            "production_last_train_bar": last_train,
            "probabilities": "evaluated (train-only) production models",
        },
        "dependencies": dependencies(folders)
        | {"cnn_lstm_embeddings_sha256": artifacts.sha256_file(job.input.embeddings)},
    }
    artifacts.write_json(job.output.result, result)


def evaluate_hybrid(job) -> None:
    """The hybrid once on the test segment; the DSR counts its trials and every agent trial of the symbol."""
    study = artifacts.read_json(job.input.study)
    segments = _segments(job.input.split)
    fit = tuple(study["hybrid"]["segments"]["fit"])
    _, data, _ = _hybrid_market(job, pd.read_parquet(job.input.probabilities), fit)
    chosen = study["chosen"]
    env = TradingEnv(data, segments["test"], _costs(job), EnvSettings.from_mapping(chosen["env"]))
    model = ALGORITHMS[chosen["params"]["kind"]].load(job.input.model, device="cpu")
    studies = [artifacts.read_json(p) for p in job.input.studies]
    _write_test_result(
        job,
        model,
        env,
        _all_trials([*studies, study]),
        kind="hybrid",
        code=chosen["code"],
        params=chosen["params"],
        validation=study["best"]["validation"],
        chosen_by=f"max {study['objective']} on the hybrid's choice bars {study['hybrid']['segments']}",
        dependencies=study["dependencies"],
    )


# -- registry model folders and the trial list ---------------------------------------------------------------
def _optional(value) -> str | None:
    """A rule input that is one path or none (`[]` when its stage is switched off)."""
    if isinstance(value, (list, tuple)):
        if len(value) > 1:
            raise ValueError(f"expected at most one path, got {value}")
        return str(value[0]) if value else None
    return str(value) if value else None


def _policy_folder(
    folder, kind, policy: bytes, study: dict, trial: dict, snapshot, segments, test=None, evidence=None
):
    """One agent / hybrid policy's model folder (package.py)."""
    chosen = study["chosen"]
    obs = chosen["observation"]
    lookback = int(trial["env"]["lookback"])
    return write_model_folder(
        folder,
        kind=kind,
        model=policy,
        config={
            "symbol": study["symbol"],
            "window": study["window"],
            "params": trial["agent"],
            "env": trial["env"],
            "observation": {k: v for k, v in obs.items() if k not in ("lookback", "size", "layout")}
            | {"lookback": lookback},
            "dependencies": study.get("dependencies") or {},
        }
        | {k: study[k] for k in ("last_bar", "sigma_bars", "cnn_lstm") if k in study},
        metrics={
            # the registry VIN: the trial code names a configuration, which other coins may share (the same
            # code from another symbol's study); `<code>.<SYMBOL>` names this model in one registry
            "vin": f"{trial['code']}.{study['symbol']}",
            "code": trial["code"],
            "grade": trial["validation"]["grade"],
            "score": trial["value"],
            "validation": trial["validation"],
            "scored_on": "validation",
        }
        | ({"test": test} if test else {}),
        costs=snapshot,
        features=package.observation_columns(obs["features"], lookback, obs["state"]),
        segments=segments,
        training_log={"trial": trial["number"], "seed": chosen["seed"], "source": trial["source"]},
        evidence=evidence,
    )


def _evidence(job, policy, env: TradingEnv, bars: pd.DataFrame, trials, chosen_on: str) -> dict:
    """The validation evidence of a chosen policy (replay.evidence_document) with the run's gate and the
    DSR over `trials` (count, validation Sharpes: the same as its test evaluation's)."""
    n_trials, sharpes = trials
    return evidence_document(
        policy,
        env,
        bars["timestamp"],
        gate_profile=job.params.gates,
        n_trials=n_trials,
        trial_sharpes=sharpes,
        chosen_on=chosen_on,
    )


def package_agent_models(job) -> None:
    """The symbol's RL models as registry model folders (package.py) under one folder: the CNN-LSTM, the
    policy of every trial in the top `archive_top_percent` % of the symbol's agent trials (the study's chosen
    policy, an ensemble member's, or retrained and parity-checked), the agent ensemble and the hybrid; plus
    trials.json listing every trial with its code, validation value and folder."""
    spec, symbol = job.params.spec, job.wildcards.symbol
    root = Path(job.output.folder)
    segments = _segments(job.input.split)
    snapshot = artifacts.read_json(job.input.costs)
    studies = [artifacts.read_json(p) for p in job.input.studies]
    kinds_ = [s["kind"] for s in studies]
    policies = keyed(kinds_, job.input.policies, "/{}.pt")
    models = keyed(kinds_, job.input.models, "/{}.zip")
    test = artifacts.read_json(job.input.test)
    # last_bar: the last bar any stage of the line read (paper trading starts after it); sigma_bars: the
    # slippage model's window (agents/paper.py replays the same environment)
    common = {
        "symbol": symbol,
        "window": job.params.window,
        "last_bar": pd.to_datetime(_bars(job.input.bars)["timestamp"], utc=True).iloc[-1].isoformat(),
        "sigma_bars": int(spec["sigma_bars"]),
    }
    plain = {k: list(v) for k, v in segments.items()}
    # stage 1
    cnn = artifacts.read_json(job.input.cnn_metadata)
    cnn_vin = f"CNNLSTM-{symbol}-{cnn['model_sha256'][:6].upper()}"
    common_policy = common | {"cnn_lstm": cnn_vin}  # the extractor whose embeddings the policies observe
    write_model_folder(
        root / cnn_vin,
        kind="cnn_lstm",
        model=Path(job.input.cnn_model).read_bytes(),
        config=common | {"params": cnn["config"], "dependencies": cnn["depends_on"]},
        metrics={"vin": cnn_vin, "validation": {"loss": cnn["history"]["best_validation_loss"]}},
        costs=snapshot,
        features=cnn["feature_names"],
        segments=plain,
        training_log=cnn["history"] | {"parity_max_abs_diff": cnn["parity_max_abs_diff"]},
    )
    # stage 2: the top trials
    ensemble_dir = Path(_optional(job.input.ensemble)) if _optional(job.input.ensemble) else None
    members = (
        {
            m["code"]: ensemble_dir / m["file"]
            for m in artifacts.read_json(ensemble_dir / ENSEMBLE_FILE)["members"]
        }
        if ensemble_dir
        else {}
    )
    bars, data, _ = _agent_market(job, segments)
    costs, date = costs_from_snapshot(snapshot), _data_date(bars)
    by_kind = {s["kind"]: s for s in studies}
    listed = [
        dict(t) | {"kind": s["kind"], "scored": t["value"] > NO_SCORE, "folder": None}
        for s in studies
        for t in s["trials"]
    ]
    top = package.top_trials(listed, float(spec["archive_top_percent"]))
    if test["code"] not in {t["code"] for t in top}:  # the evaluated choice always gets its folder
        top.append(next(dict(t) for t in listed if t["code"] == test["code"]))
    for t in top:
        study = by_kind[t["kind"]]
        setup = _setup(job, t["kind"], data, segments["train"], segments["validation"], costs, date)
        if t["code"] == study["chosen"]["code"]:
            policy, source = Path(policies[t["kind"]]).read_bytes(), "the study's chosen policy"
        elif t["code"] in members:
            policy, source = members[t["code"]].read_bytes(), "an ensemble member's policy"
        else:
            member = _member(job, t, study, models[t["kind"]], data, segments, costs, date)
            policy = export.fresh_script_bytes(member.net, f"{export.__name__}:rebuild", "agent policy")
            source = "retrained (same seed and parameters; validation value reproduced)"
        trial = t | {
            "agent": setup.params(t["params"]).to_dict(),
            "env": setup.settings(t["params"], scoring=True).to_dict(),
            "source": source,
        }
        tested, evidence = (test if test["code"] == t["code"] else None), None
        if tested:  # the symbol's chosen agent: its validation evidence makes it a champion candidate
            scoring = TradingEnv(data, segments["validation"], costs, EnvSettings.from_mapping(trial["env"]))
            evidence = _evidence(
                job,
                scripted_policy(load_scripted(policy)),
                scoring,
                bars,
                _all_trials(studies),
                f"max validation {spec['study']['objective']} over every agent trial of the symbol",
            )
        _policy_folder(
            root / t["code"],
            t["kind"],
            policy,
            study | common_policy,
            trial,
            snapshot,
            plain,
            tested,
            evidence,
        )
        next(x for x in listed if x["code"] == t["code"])["folder"] = t["code"]
    # stage 4
    if ensemble_dir:
        doc, loaded = _load_ensemble(ensemble_dir)
        chosen = doc["choice"]["chosen"]
        vin = f"AGENS-{symbol}-{doc['method'].upper()}-K{chosen['k']}-{date}"
        ensemble = EnsemblePolicy(loaded, doc["method"], data.features.shape[1])
        scoring = TradingEnv(data, segments["validation"], costs, EnvSettings.from_mapping(doc["env"]))
        evidence = _evidence(
            job,
            lambda obs: ensemble.predict(obs)[0],
            scoring,
            bars,
            _ensemble_trials(studies, doc),
            f"max validation {doc['choice']['objective']} over {len(doc['choice']['candidates'])} candidates",
        )
        write_model_folder(
            root / vin,
            kind="agent_ensemble",
            model=(ensemble_dir / ENSEMBLE_FILE).read_bytes(),
            extra={m["file"]: (ensemble_dir / m["file"]).read_bytes() for m in doc["members"]},
            # what paper trading replays (registry/paper_trading.py): the members' extractor, the env, the
            # observation (the members' features, their train statistics, the ensemble's lookback)
            config=common_policy
            | {
                "method": doc["method"],
                "members": [m["code"] for m in doc["members"]],
                "env": doc["env"],
                "observation": doc["observation"] | {"lookback": doc["lookback"]},
            },
            metrics={
                "vin": vin,
                "grade": chosen["validation"]["grade"],
                "score": chosen["value"],
                "validation": chosen["validation"],
                "test": artifacts.read_json(_optional(job.input.ensemble_test)),
            },
            costs=snapshot,
            features=package.observation_columns(
                doc["observation"]["features"], doc["lookback"], doc["observation"]["state"]
            ),
            segments=plain,
            training_log={"candidates": doc["choice"]["candidates"]},
            evidence=evidence,
        )
    # stage 3
    if _optional(job.input.hybrid_study):
        study = artifacts.read_json(_optional(job.input.hybrid_study)) | common_policy
        best = study["best"]
        policy = Path(_optional(job.input.hybrid_policy)).read_bytes()
        segs = {k: tuple(v) for k, v in study["hybrid"]["segments"].items()}
        probabilities = pd.read_parquet(_optional(job.input.hybrid_probabilities))
        _, hybrid_data, _ = _hybrid_market(job, probabilities, segs["fit"])
        # its evidence: the bars it was chosen on, after the ones it trained on (hybrid.py)
        scoring = TradingEnv(
            hybrid_data, segs["select"], costs, EnvSettings.from_mapping(study["chosen"]["env"])
        )
        evidence = _evidence(
            job,
            scripted_policy(load_scripted(policy)),
            scoring,
            bars,
            _all_trials([*studies, study]),
            f"max {study['objective']} on the hybrid's choice bars {list(segs['select'])}",
        )
        trial = best | {
            "agent": study["chosen"]["params"],
            "env": study["chosen"]["env"],
            "source": "the hybrid study's chosen policy",
        }
        seg = plain | {
            "fit": study["hybrid"]["segments"]["fit"],
            "select": study["hybrid"]["segments"]["select"],
        }
        _policy_folder(
            root / best["code"],
            f"hybrid_{study['kind']}",
            policy,
            study,
            trial,
            snapshot,
            seg,
            artifacts.read_json(_optional(job.input.hybrid_test)),
            evidence,
        )
        listed.append(
            dict(best) | {"kind": f"hybrid_{study['kind']}", "scored": True, "folder": best["code"]}
        )
    artifacts.write_json(
        root / package.TRIALS_FILE,
        {
            "symbol": symbol,
            "archive_top_percent": spec["archive_top_percent"],
            "ranked_by": f"validation {spec['study']['objective']}",
            "trials": listed,
        },
    )
