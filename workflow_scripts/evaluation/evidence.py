"""Validation evidence of a model (docs/LIFECYCLE.md): its trading rule replayed on the validation segment
with the threshold chosen there, kept as per-bar after-cost returns so the registry can compare candidates of
a (symbol, side) slot on the same bars by the same money measure (workflow_scripts/lifecycle/compare.py).

Written by production into the model folder as EVIDENCE_FILE, from the model that was evaluated (not a model
refit on later bars), so the returns are what the validation segment saw. Contents:

    segment         "validation"; lo, hi bar positions
    timestamps_s    bar open times (epoch seconds) of the bars [lo, hi)
    returns         per-bar after-cost simple returns of the rule on those bars (flat bars 0)
    trades          [[entry_s, exit_s], ...] of the rule's trades
    after_costs     the evaluation's after-cost metrics on validation (DSR with the model's trial count)
    gate            the gate profile's verdict on those validation metrics: what makes a model eligible
    threshold, rule, bars_per_year, in_sample_fit (true when the model itself was fitted on these bars)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workflow_scripts.evaluation.backtest import evaluate_model
from workflow_scripts.evaluation.variant_evaluation import model_inputs
from workflow_scripts.targets.grammar import horizon_bars

EVIDENCE_FILE = "validation_returns.json"


def epoch_seconds(timestamps) -> np.ndarray:
    """int64 epoch seconds of UTC timestamps (naive ones are taken as UTC)."""
    ts = pd.DatetimeIndex(pd.to_datetime(pd.Series(timestamps)))
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return ts.as_unit("s").asi8.astype(np.int64)


def segment_evidence(
    inputs: Mapping[str, Any],
    rule: Mapping[str, Any],
    segment: tuple[int, int],
    timestamps,
    *,
    gate_profile: Mapping[str, Any] | None = None,
    n_trials: int = 1,
    trial_sharpes: Sequence[float] | None = None,
    name: str = "validation",
    in_sample_fit: bool = False,
) -> dict:
    """The evidence document of one model on one segment; `inputs` are evaluate_model's row inputs (pos,
    side, proba, label, barrier_logret, sigma, exit_pos, exit_logret, horizon, close, costs)."""
    lo, hi = int(segment[0]), int(segment[1])
    res = evaluate_model(
        **inputs,
        segment=(lo, hi),
        rule=dict(rule),
        n_trials=max(1, int(n_trials)),
        trial_sharpes=[s for s in (trial_sharpes or []) if s is not None],
        gate_profile=gate_profile,
        include_trades=True,
        include_curves=True,
    )
    eq = np.asarray(res["curves"]["equity_net"], dtype=float)
    returns = np.divide(eq[1:], eq[:-1], out=np.ones(len(eq) - 1), where=eq[:-1] != 0) - 1.0
    secs = epoch_seconds(timestamps)
    trades = res["trades"]
    return {
        "segment": name,
        "lo": lo,
        "hi": hi,
        "threshold": res["rule"]["threshold"],
        "rule": res["rule"],
        "bars_per_year": res["bars_per_year"],
        "in_sample_fit": bool(in_sample_fit),
        "timestamps_s": secs[lo:hi].tolist(),
        "returns": returns.tolist(),
        "trades": [
            [int(secs[a]), int(secs[b])]
            for a, b in zip(trades.get("entry_pos", []), trades.get("exit_pos", []))
        ],
        "after_costs": res["after_costs"],
        "gate": res.get("gate"),
    }


def validation_evidence(
    targets: pd.DataFrame,
    close: np.ndarray,
    split: Mapping,
    window: int,
    targets_cfg: Mapping,
    target: str,
    predictions: pd.DataFrame,
    costs: Mapping,
    rule: Mapping,
    gate_profile: Mapping | None,
    *,
    n_trials: int = 1,
    trial_sharpes: Sequence[float] | None = None,
    in_sample_fit: bool = False,
) -> dict:
    """segment_evidence on the validation segment of `split` from a model's saved predictions (the
    production folder's view: targets table, close series, cost snapshot, the rule chosen on validation)."""
    horizon = horizon_bars(window, dict(targets_cfg))
    inputs = model_inputs(targets, target, predictions, horizon) | {
        "horizon": horizon,
        "close": close,
        "costs": costs,
    }
    return segment_evidence(
        inputs,
        rule,
        (split["validation"]["lo"], split["validation"]["hi"]),
        targets["timestamp"],
        gate_profile=gate_profile,
        n_trials=n_trials,
        trial_sharpes=trial_sharpes,
        in_sample_fit=in_sample_fit,
    )
