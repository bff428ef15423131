"""The target grammar: target ids (`high_breakout_k1.5_th0.5`), the grid of one window and its label horizon.

Every stage that names or parses a target uses these functions, so a target id is spelled one way everywhere.
"""

from __future__ import annotations

import re

TARGET_TYPES = ("high_breakout", "high_reversion", "low_breakout", "low_reversion")


def format_threshold(x: float) -> str:
    """1 -> '1.0', 1.25 -> '1.25': stable spelling for paths."""
    text = repr(float(x))
    return text


def target_id(kind: str, k: float, theta: float) -> str:
    return f"{kind}_k{format_threshold(k)}_th{format_threshold(theta)}"


def target_grid(targets_cfg: dict) -> list[dict]:
    """Every target of one window, in a stable order: [{id, type, side, k, theta}]."""
    grid = []
    for kind in targets_cfg["types"]:
        for k in targets_cfg["std_thresholds"]:
            for theta in targets_cfg["barrier_thresholds"]:
                grid.append(
                    {
                        "id": target_id(kind, k, theta),
                        "type": kind,
                        "side": kind.split("_")[0],
                        "k": float(k),
                        "theta": float(theta),
                    }
                )
    return grid


def parse_target_id(tid: str) -> dict:
    m = re.fullmatch(r"(high|low)_(breakout|reversion)_k([0-9.]+)_th([0-9.]+)", tid)
    if not m:
        raise ValueError(f"not a target id: {tid!r} (expected like high_breakout_k1.5_th0.5)")
    return {"id": tid, "type": f"{m[1]}_{m[2]}", "side": m[1], "k": float(m[3]), "theta": float(m[4])}


def horizon_bars(window: int, targets_cfg: dict) -> int:
    return int(window) * int(targets_cfg["horizon_multiplier"])
