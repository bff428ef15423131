"""Quality gates: does one evaluated model clear the bar, after costs? Profiles come from config/gates/*.yaml.

A profile is a plain dict:
    name: strict | exploratory | ...
    label: one line shown beside every verdict judged with it
    min_trades: int        (after-cost trades on the test segment, >=)
    min_dsr: float         (deflated Sharpe probability, >)
    max_drawdown: float    (max drawdown as a positive fraction, <=)
    min_net_return: float  (after-cost total return, >; 0 means "positive")
Every verdict records the profile it was judged with; a failing verdict keeps one readable reason per failed
gate. A missing metric (for example a DSR that could not be computed with fewer than two trades) fails its
gate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

PROFILE_KEYS = ("name", "label", "min_trades", "min_dsr", "max_drawdown", "min_net_return")


class GateProfileError(ValueError):
    pass


def validate_profile(profile: Mapping[str, Any]) -> dict:
    missing = [k for k in PROFILE_KEYS if k not in profile]
    unknown = sorted(set(profile) - set(PROFILE_KEYS))
    if missing or unknown:
        raise GateProfileError(
            f"gate profile: missing {missing}, unknown {unknown}; keys are {list(PROFILE_KEYS)}"
        )
    p = dict(profile)
    if not (isinstance(p["min_trades"], int) and p["min_trades"] >= 0):
        raise GateProfileError(f"gate profile {p['name']}: min_trades must be an integer >= 0")
    if not 0.0 <= float(p["min_dsr"]) < 1.0:
        raise GateProfileError(f"gate profile {p['name']}: min_dsr must be in [0, 1)")
    if not 0.0 < float(p["max_drawdown"]) <= 1.0:
        raise GateProfileError(f"gate profile {p['name']}: max_drawdown must be in (0, 1]")
    return p


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def judge(metrics: Mapping[str, Any], profile: Mapping[str, Any]) -> dict:
    """metrics: after-cost values with keys n_trades, dsr, max_drawdown, total_return.

    Returns {passed, reasons (readable, empty when passed), failed_gates (the profile keys that failed),
    profile, profile_label}.
    """
    p = validate_profile(profile)
    reasons: list[str] = []
    failed: list[str] = []
    n = _num(metrics.get("n_trades"))
    if n is None or n < p["min_trades"]:
        reasons.append(f"too few trades after costs: {0 if n is None else int(n)} < {p['min_trades']}")
        failed.append("min_trades")
    dsr = _num(metrics.get("dsr"))
    if dsr is None:
        reasons.append("deflated Sharpe ratio not available (too few trades or zero spread)")
        failed.append("min_dsr")
    elif not dsr > p["min_dsr"]:
        reasons.append(f"deflated Sharpe probability {dsr:.3f} is not above {p['min_dsr']:.3f}")
        failed.append("min_dsr")
    mdd = _num(metrics.get("max_drawdown"))
    if mdd is None:
        reasons.append("max drawdown not available")
        failed.append("max_drawdown")
    elif mdd > p["max_drawdown"]:
        reasons.append(f"max drawdown {mdd:.1%} exceeds the limit {p['max_drawdown']:.1%}")
        failed.append("max_drawdown")
    ret = _num(metrics.get("total_return"))
    if ret is None:
        reasons.append("net return not available")
        failed.append("min_net_return")
    elif not ret > p["min_net_return"]:
        reasons.append(f"net return after costs {ret:+.2%} is not above {p['min_net_return']:+.2%}")
        failed.append("min_net_return")
    return {
        "passed": not reasons,
        "reasons": reasons,
        "failed_gates": failed,
        "profile": p["name"],
        "profile_label": p["label"],
    }


def summarise(verdicts: Iterable[Mapping[str, Any]]) -> dict:
    """Pass/fail counts over a run and one plain sentence; nothing passing is a result, not an error."""
    verdicts = list(verdicts)
    n = len(verdicts)
    passed = sum(1 for v in verdicts if v.get("passed"))
    profiles = sorted({str(v.get("profile")) for v in verdicts})
    prof = ", ".join(profiles) if profiles else "none"
    if n == 0:
        message = "No models were evaluated."
    elif passed == 0:
        message = (
            f"No model passed the quality gates ({prof}): 0 of {n} evaluated models passed. "
            "Nothing to promote."
        )
    else:
        message = f"{passed} of {n} evaluated models passed the quality gates ({prof})."
    reasons: dict[str, int] = {}
    for v in verdicts:
        for gate in v.get("failed_gates", []):
            reasons[gate] = reasons.get(gate, 0) + 1
    return {
        "n_evaluated": n,
        "n_passed": passed,
        "n_failed": n - passed,
        "profiles": profiles,
        "failure_reasons": dict(sorted(reasons.items())),
        "message": message,
    }
