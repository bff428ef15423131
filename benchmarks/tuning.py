"""Benchmark: TPE + median pruning against random search without pruning, same time budget, real BTC bars.

    python benchmarks/tuning.py [--seconds 75] [--seeds 1] [--out benchmarks/out/tuning.json]

Data: data/raw/BTCUSDT_1h.parquet; target high_breakout_k1.0_th1.0 on window 10
(workflow_scripts.targets.swing_targets, horizon 10 bars), event rows only (codes 0/1/2); a dozen simple
features known at t (returns, volatility, range, volume), computed here so the benchmark does not depend on
the feature stage. Scoring is stage 3's: mean macro average precision over 5 purged expanding walk-forward
folds (embargo 24 bars) on the first 80 % of the rows (the last 20 % stand in for the untouched test segment
and are not used). Space: config/tuning's grid (stage 2's broad space). Arms: TPE with per-fold pruning on
fold AP (the default), TPE with the LightGBM callback pruning on -multi_logloss every 10 rounds, random search
without pruning; one thread, one after the other.

Reports per arm: finished trials, pruned trials, trials per minute, best score, and best-score-so-far after
1, 5, 10, 20, 40, ... trials (trial order), so the arms can also be compared at equal trial counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workflow_scripts import artifacts
from workflow_scripts.targets import grammar, swing_targets
from workflow_scripts.training import tuning

WINDOW, HORIZON = 10, 10
TARGET = {"types": ["high_breakout"], "std_thresholds": [1.0], "barrier_thresholds": [1.0]}


def simple_features(bars: pd.DataFrame) -> pd.DataFrame:
    """Trailing features, each known at the bar's close (uses bars <= t only)."""
    c, h, lo, v = (bars[k].astype(float) for k in ("close", "high", "low", "volume"))
    logc = np.log(c)
    r1 = logc.diff()
    out = {f"ret_{n}": logc.diff(n) for n in (1, 2, 4, 8, 24, 48)}
    out.update({f"vol_{n}": r1.rolling(n).std() for n in (12, 24, 72)})
    out["range_1"] = np.log(h / lo)
    out["range_24"] = np.log(h.rolling(24).max() / lo.rolling(24).min())
    out["dist_max_24"] = logc - np.log(h.rolling(24).max())
    out["dist_min_24"] = logc - np.log(lo.rolling(24).min())
    out["volume_z_24"] = (v - v.rolling(24).mean()) / v.rolling(24).std()
    out["hour"] = bars["timestamp"].dt.hour.astype(float)
    return pd.DataFrame(out).astype(np.float32)


def load_problem():
    bars = pd.read_parquet(REPO / "data/raw/BTCUSDT_1h.parquet")
    grid = grammar.target_grid(TARGET)
    targets = swing_targets.build_targets(bars, WINDOW, grid, HORIZON, 24)
    codes = targets[grid[0]["id"]].to_numpy()
    positions = np.flatnonzero(np.isin(codes, (0, 1, 2)))
    positions = positions[: int(len(positions) * 0.8)]  # last 20 %: the test segment, unused
    X = simple_features(bars).iloc[positions].reset_index(drop=True)
    y = codes[positions].astype(np.int32)
    return X, y, positions, targets["label_end"].to_numpy()[positions], len(bars)


def best_so_far(trials: list[dict]) -> list[float | None]:
    best, curve = None, []
    for t in trials:
        if t["state"] == "COMPLETE" and (best is None or t["value"] > best):
            best = t["value"]
        curve.append(best)
    return curve


def run_arm(name, sampler, pruner_cfg, objective, seconds, seed, workdir) -> dict:
    start = time.perf_counter()
    result = tuning.run_stage(
        journal_path=Path(workdir) / f"{name}_{seed}.journal",
        study_name=name,
        objective=objective,
        n_trials=None,
        timeout_s=seconds,
        seed=seed,
        sampler=sampler,
        pruner_cfg=pruner_cfg,
    )
    wall = time.perf_counter() - start
    trials = [t for t in result["trials"] if t["state"] in ("COMPLETE", "PRUNED")]
    curve = best_so_far(trials)
    marks = [n for n in (1, 5, 10, 20, 40, 80, 160, 320) if n <= len(curve)]
    return {
        "arm": name,
        "seed": seed,
        "wall_seconds": round(wall, 1),
        "finished_trials": len(trials),
        "pruned_trials": result["trial_counts"]["pruned"],
        "trials_per_minute": round(len(trials) / wall * 60, 2),
        "best_value": result["best_value"],
        "best_params": result["best_params"],
        "best_after_n_trials": {n: curve[n - 1] for n in marks},
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=75.0, help="time budget per arm and seed")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "benchmarks/out/tuning.json"))
    args = ap.parse_args(argv)

    cfg = yaml.safe_load((REPO / "config/tuning/default.yaml").read_text())
    X, y, positions, label_end, n_bars = load_problem()
    folds = tuning.cv_folds(positions, label_end, {**cfg["cv"], "min_train_rows": 200})
    space = tuning.broad_space(cfg)
    common = {
        "early_stopping_rounds": cfg["early_stopping_rounds"]["stage3"],
        "max_rounds": cfg["max_rounds"],
        "seed": cfg["seed"],
        "num_threads": 1,
        "report_every": cfg["report_every"],
    }
    arms = [
        ("tpe_pruned_fold", "tpe", cfg["pruner"], "fold"),
        ("tpe_pruned_iteration", "tpe", {**cfg["pruner"], "n_warmup_steps": 20}, "iteration"),
        ("random_unpruned", "random", None, None),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for seed in range(cfg["seed"], cfg["seed"] + args.seeds):
            for name, sampler, pruner_cfg, report in arms:
                objective = tuning.make_objective(
                    X,
                    y,
                    folds,
                    space,
                    cfg["fixed"],
                    pruning=report is not None,
                    report=report or "fold",
                    **common,
                )
                rows.append(run_arm(name, sampler, pruner_cfg, objective, args.seconds, seed, workdir))
                print(json.dumps(rows[-1]), flush=True)
    report = {
        "data": {
            "symbol": "BTCUSDT",
            "bars": n_bars,
            "rows": len(y),
            "features": int(X.shape[1]),
            "class_counts": {int(c): int((y == c).sum()) for c in (0, 1, 2)},
            "folds": [[len(t), len(v)] for t, v in folds],
        },
        "budget_seconds_per_arm": args.seconds,
        "arms": rows,
    }
    artifacts.write_json(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
