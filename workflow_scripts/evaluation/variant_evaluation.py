"""Cost-aware evaluation of the stage-1 variants of one (symbol, window), from their saved predictions.

Evaluation reads predictions, never models or features: a change of costs reruns this and nothing upstream.
Per variant: the trading rule's threshold is chosen on validation, then the test segment is evaluated. The
deflated Sharpe ratio counts the real trials behind a choice: all trained variants of the same (symbol,
window, side), with the variance of their per-trade test Sharpes (docs/EVALUATION.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workflow_scripts.evaluation.backtest import evaluate_model, rows_from_targets, select_threshold
from workflow_scripts.evaluation.gates import summarise
from workflow_scripts.evaluation.grades import grade_run
from workflow_scripts.evaluation.vin import encode_vin, vin_fields_for_lgbm
from workflow_scripts.targets.grammar import horizon_bars, parse_target_id

PROBA_COLUMNS = ["p_neither", "p_breakout", "p_reversion"]


def model_inputs(targets: pd.DataFrame, target: str, predictions: pd.DataFrame, horizon: int) -> dict:
    """The event rows that were scored, with their probabilities aligned on bar position."""
    rows = rows_from_targets(targets, target, horizon)
    keep = np.isin(rows["pos"], predictions["pos"].to_numpy())
    out = {k: (v[keep] if isinstance(v, np.ndarray) else v) for k, v in rows.items()}
    proba = predictions.set_index("pos").loc[out["pos"], PROBA_COLUMNS].to_numpy()
    out["proba"] = proba
    return out


def choose_on_validation(
    targets: pd.DataFrame,
    close: np.ndarray,
    split: dict,
    window: int,
    targets_cfg: dict,
    target: str,
    predictions: pd.DataFrame,
    costs: dict,
    cfg: dict,
) -> dict:
    """First pass of one model: the trading rule's threshold chosen on validation, then its test Sharpe (the
    value its peers' DSR variance is computed from)."""
    horizon = horizon_bars(window, targets_cfg)
    ev = cfg["evaluation"]
    rule = {
        "allow_short": ev["allow_short"],
        "allow_overlap": ev["allow_overlap"],
        "position_size": ev["position_size"],
    }
    inputs = model_inputs(targets, target, predictions, horizon) | {
        "horizon": horizon,
        "close": close,
        "costs": costs,
    }
    choice = select_threshold(
        ev["threshold_grid"],
        min_trades=ev["threshold_min_trades"],
        fallback=ev["fallback_threshold"],
        rule=rule,
        segment=(split["validation"]["lo"], split["validation"]["hi"]),
        **inputs,
    )
    test_rule = rule | {"threshold": choice["threshold"]}
    once = evaluate_model(**inputs, segment=(split["test"]["lo"], split["test"]["hi"]), rule=test_rule)
    return {
        "inputs": inputs,
        "rule": test_rule,
        "threshold": choice,
        "sharpe": once["after_costs"]["sharpe_per_trade"],
        "target": target,
    }


def evaluate_on_test(first: dict, split: dict, cfg: dict, n_trials: int, trial_sharpes: list) -> dict:
    """Second pass: the test segment with the chosen threshold, DSR over `n_trials` trials whose per-trade
    test Sharpes are `trial_sharpes`, gate verdict and grade."""
    result = evaluate_model(
        **first["inputs"],
        segment=(split["test"]["lo"], split["test"]["hi"]),
        rule=first["rule"],
        n_trials=n_trials,
        trial_sharpes=[s for s in trial_sharpes if s is not None],
        gate_profile=cfg["gates"],
        grades=cfg["grades"],
    )
    return {"target": first["target"], "status": "evaluated", "threshold_choice": first["threshold"]} | result


def evaluate_window(
    targets: pd.DataFrame,
    close: np.ndarray,
    split: dict,
    window: int,
    targets_cfg: dict,
    predictions: dict[str, pd.DataFrame],
    costs: dict,
    cfg: dict,
) -> dict[str, dict]:
    """{target id: result}; cfg holds the evaluation, gates and grades config groups."""
    first_pass: dict[str, dict] = {}
    for target, pred in predictions.items():
        if pred[PROBA_COLUMNS].isna().all().all():
            continue  # a skipped variant: nothing to trade
        first_pass[target] = choose_on_validation(
            targets, close, split, window, targets_cfg, target, pred, costs, cfg
        )

    results = {}
    for target in predictions:
        if target not in first_pass:
            results[target] = {"target": target, "status": "skipped"}
            continue
        side = parse_target_id(target)["side"]
        peers = [v["sharpe"] for t, v in first_pass.items() if parse_target_id(t)["side"] == side]
        results[target] = evaluate_on_test(first_pass[target], split, cfg, len(peers), peers)
    return results


def variant_vin(
    symbol: str,
    window: int,
    target: str,
    params: dict,
    grade: str,
    best_iteration: int,
    data_end: str,
    model_sha256: str,
) -> str:
    """The VIN of a stage-1 model. The date is the last bar of the data it saw, so reruns give the same
    code."""
    date = pd.Timestamp(data_end).strftime("%Y%m%d")
    identity = {
        "symbol": symbol,
        "target": target,
        "window": window,
        "params": params,
        "date": date,
        "model_sha256": model_sha256,
    }
    fields = vin_fields_for_lgbm(
        params,
        grade=grade,
        target=parse_target_id(target),
        window=window,
        date=date,
        identity=identity,
        best_iteration=best_iteration,
    )
    return encode_vin(fields)


def test_result_with_curves(
    targets: pd.DataFrame,
    close: np.ndarray,
    split: dict,
    window: int,
    targets_cfg: dict,
    target: str,
    predictions: pd.DataFrame,
    costs: dict,
    cfg: dict,
    evaluated: dict,
) -> dict:
    """Re-run one variant's test evaluation with its chosen threshold, keeping the equity curves for a
    plot."""
    horizon = horizon_bars(window, targets_cfg)
    inputs = model_inputs(targets, target, predictions, horizon) | {
        "horizon": horizon,
        "close": close,
        "costs": costs,
    }
    result = evaluate_model(
        **inputs,
        segment=(split["test"]["lo"], split["test"]["hi"]),
        rule=evaluated["rule"],
        n_trials=evaluated["sharpe_tests"]["n_trials"],
        gate_profile=cfg["gates"],
        grades=cfg["grades"],
        include_curves=True,
    )
    # The plot's caption shows the verdict of record (computed with every peer's Sharpe), not a re-derived
    # one.
    result["gate"], result["grade"] = evaluated["gate"], evaluated["grade"]
    result["after_costs"]["dsr"] = evaluated["after_costs"]["dsr"]
    return result


def run_summary(evaluations: list[dict], choices: list[dict], grades_cfg: dict) -> dict:
    """Gate verdicts over every evaluated variant, grade distribution, and the chosen variants' verdicts."""

    evaluated = [e for e in evaluations if e.get("status") == "evaluated"]
    gates = summarise([e["gate"] for e in evaluated])
    grades = [e["grade"]["grade"] for e in evaluated]
    percentile = None
    if grades_cfg["method"] == "percentile":
        percentile = grade_run([e["after_costs"] for e in evaluated], grades_cfg)
    chosen = []
    for c in choices:
        best = c["best"] or {}
        chosen.append(
            {
                "symbol": c["symbol"],
                "window": c["window"],
                "side": c["side"],
                "target": best.get("target"),
                "vin": best.get("vin"),
                "grade": best.get("grade"),
                "gate_passed": best.get("gate_passed"),
                "n_trades": best.get("n_trades"),
                "net_total_return": best.get("net_total_return"),
                "dsr": best.get("dsr"),
            }
        )
    return {
        "gates": gates,
        "message": gates["message"],
        "grade_counts": {g: grades.count(g) for g in sorted(set(grades))},
        "percentile_grades": percentile,
        "chosen": chosen,
        "chosen_passed": sum(1 for c in chosen if c["gate_passed"]),
    }
