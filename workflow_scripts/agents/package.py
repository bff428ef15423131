"""The RL line's models as registry model folders (models/folder.py contract, models/kinds.py kinds): what
`load_folder` / `verify_folder` / `swingflow archive` read. TorchScript files only: an SB3 zip is a pickle
and stays in results/agents/study.

    <name>/                     one folder per model: the trial code (agents, hybrid) or the VIN
        <model file>            cnn_lstm.pt | policy.pt | hybrid_policy.pt | agent_ensemble.json (+ members/)
        config.json             symbol, window, side "both", target "agent", model_type, model_kind, params,
                                env, observation, dependencies; policies: last_bar (the data end: paper
                                trading starts after it), sigma_bars, cnn_lstm (the extractor VIN)
        metrics.json            vin (a policy's: `<trial code>.<SYMBOL>`, registry/runs.register_agents),
                                code, grade and validation metrics, score (validation objective), test (the
                                test evaluation when this model is the one evaluated there)
        costs.json              the cost snapshot the model was scored with
        features.json           features: the columns predict reads (observation columns
                                `<feature>@t-<lag>`, oldest first, then the position state; the CNN-LSTM's
                                raw feature columns)
        split_indices.json      the segments [lo, hi) the model learned / was chosen / was tested on
        training_log.json       history, parity, retraining facts
        validation_returns.json the chosen agent, the ensemble and the hybrid only: their validation evidence
                                (agents/replay.py, the supervised line's format): what makes them eligible
                                for the champion rules of the symbol's "both" slot
        sha256.txt              written last, covers every file

`side` is "both": an agent trades one coin long and short, so these folders are loadable and verifiable like
any model folder and compete in their own champion slot (symbol x "both"), never in the swing classifiers'
(symbol x high/low)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workflow_scripts import artifacts
from workflow_scripts.evaluation.evidence import EVIDENCE_FILE
from workflow_scripts.models import kinds
from workflow_scripts.models.folder import verify_folder, write_sha256

TRIALS_FILE = "trials.json"


def observation_columns(features: Sequence[str], lookback: int, state: Sequence[str]) -> list[str]:
    """Names of an observation's values: `<feature>@t-<lag>` for lag lookback-1 .. 0 (oldest row first,
    each row all features), then the position state."""
    return [f"{f}@t-{lag}" for lag in range(int(lookback) - 1, -1, -1) for f in features] + list(state)


def write_model_folder(
    folder: str | os.PathLike,
    *,
    kind: str,
    model: bytes,
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
    costs: Mapping[str, Any],
    features: Sequence[str],
    segments: Mapping[str, Any],
    training_log: Mapping[str, Any],
    extra: Mapping[str, bytes] | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Write one model folder of `kind` (models/kinds.py), its validation `evidence` (EVIDENCE_FILE) when
    given, and its sha256.txt; verify it; {file: sha256}."""
    entry = kinds.KINDS[kind]
    folder = Path(folder)
    artifacts.write_bytes(folder / entry.model_file, model)
    for name, data in (extra or {}).items():
        artifacts.write_bytes(folder / name, data)
    head = {"side": "both", "target": "agent", "model_type": entry.model_type, "model_kind": kind}
    artifacts.write_json(folder / "config.json", dict(config) | head)
    artifacts.write_json(folder / "metrics.json", dict(metrics))
    artifacts.write_json(folder / "costs.json", dict(costs))
    artifacts.write_json(folder / "features.json", {"features": list(features)})
    artifacts.write_json(folder / "split_indices.json", {k: list(v) for k, v in segments.items()})
    artifacts.write_json(folder / "training_log.json", dict(training_log))
    if evidence is not None:
        artifacts.write_json(folder / EVIDENCE_FILE, dict(evidence))
    write_sha256(folder)
    return verify_folder(folder)


def top_trials(trials: Sequence[Mapping[str, Any]], top_percent: float) -> list[dict]:
    """The best `top_percent` % of scored trials (at least one when any scored), best validation value
    first (ties: trial code)."""
    if not 0 < top_percent <= 100:
        raise ValueError(f"top_percent must be in (0, 100], got {top_percent}")
    scored = sorted((dict(t) for t in trials if t.get("scored")), key=lambda t: (-t["value"], t["code"]))
    n = -(-len(scored) * top_percent // 100)  # ceil
    return scored[: max(1, int(n))] if scored else []
