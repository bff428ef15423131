"""Benchmark of feature screening and selection at seed scale (docs/SELECTION.md has the figures).

(a) Screening: the training segment (first 60% of the bars) of a BTCUSDT cross-coin table with 3 coins x
    ~5,000 features = ~15,000 float32 columns. Built with `workflow_scripts.features.build_features` and the
    `features=seed_scale` group when that exists, otherwise from realistic synthetic generators over the real
    BTC/ETH/SOL bars (rolling means/stds/z-scores/extremes/EWMs over 50 windows, lags, breakout indicators:
    many near-duplicate columns, warm-up NaN, sparse 0/1 columns). Runs in a child process so that its peak
    RSS is the job's own.
(b) Selection: ~10 variants (swing-like targets from the real BTC bars) on ~2,000 columns; per variant the
    shared binned dataset + subset against the naive rebuild (a fresh lgb.Dataset for the fit and
    early-stopping rows).

    /tmp/probe-venv/bin/python benchmarks/selection.py                 # both parts
    /tmp/probe-venv/bin/python benchmarks/selection.py --part selection --variants 4 --columns 500
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workflow_scripts.config.schema import config_group
from workflow_scripts.selection.feature_screening import feature_source, screen_features, segment_positions
from workflow_scripts.selection.feature_selection import (
    aggregate_selection,
    build_shared_dataset,
    dataset_params,
    importance_table,
    plan_window,
    select_for_variant,
    variant_params,
)

COINS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
TRAIN_FRAC = 0.6


def _rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
        return True
    except OSError:
        return False


def load_bars(symbol: str) -> pd.DataFrame:
    bars = pd.read_parquet(ROOT / "data/raw" / f"{symbol}_1h.parquet")
    return bars.sort_values("timestamp").reset_index(drop=True)


# ---- synthetic features from real bars ---------------------------------------------------------------------
WINDOWS = np.unique(np.geomspace(2, 720, 50).astype(int))


def _rolling(values: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Rolling mean and std over the last w values (NaN during warm-up) via cumulative sums, float64."""
    x = np.nan_to_num(values)
    c1 = np.concatenate([[0.0], np.cumsum(x)])
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])
    mean = np.full(len(x), np.nan)
    std = np.full(len(x), np.nan)
    s1 = c1[w:] - c1[:-w]
    s2 = c2[w:] - c2[:-w]
    mean[w - 1 :] = s1 / w
    std[w - 1 :] = np.sqrt(np.maximum(s2 / w - (s1 / w) ** 2, 0.0))
    return mean, std


def synthetic_features(bars: pd.DataFrame, per_coin: int, rows: int) -> tuple[list[str], list[np.ndarray]]:
    """~`per_coin` float32 columns (first `rows` bars) computed from one coin's real bars; all known at t."""
    o, h, l, c, v = (bars[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume"))
    ret = np.concatenate([[np.nan], np.diff(np.log(c))])
    base = {
        "ret": ret,
        "absret": np.abs(ret),
        "range": np.log(h / l),
        "logvol": np.log1p(v),
        "dvol": np.concatenate([[np.nan], np.diff(np.log1p(v))]),
        "body": (c - o) / o,
        "upwick": (h - np.maximum(o, c)) / o,
        "lowwick": (np.minimum(o, c) - l) / o,
        "closepos": (c - l) / np.where(h > l, h - l, np.nan),
        "gap": np.concatenate([[np.nan], o[1:] / c[:-1] - 1]),
    }
    names, cols = [], []

    def add(name: str, x: np.ndarray) -> None:
        if len(names) < per_coin:
            names.append(name)
            cols.append(np.asarray(x[:rows], dtype=np.float32))

    s = pd.DataFrame(base)
    for w in WINDOWS:
        roll = s.rolling(int(w), min_periods=int(w))
        mx, mn = roll.max().to_numpy(), roll.min().to_numpy()
        for j, (bname, x) in enumerate(base.items()):
            mean, std = _rolling(x, int(w))
            with np.errstate(invalid="ignore", divide="ignore"):
                z = (x - mean) / std
            add(f"tech__{bname}_mean_{w}", mean)
            add(f"vol__{bname}_std_{w}", std)
            add(f"tech__{bname}_z_{w}", z)
            add(f"struct__{bname}_max_{w}", mx[:, j])
            add(f"struct__{bname}_min_{w}", mn[:, j])
            add(f"tech__{bname}_ewm_{w}", pd.Series(x).ewm(span=int(w), min_periods=int(w)).mean().to_numpy())
            prev_max = np.concatenate([[np.nan], mx[:-1, j]])
            add(f"struct__{bname}_breakout_{w}", np.where(np.isnan(prev_max), np.nan, (x > prev_max) * 1.0))
            add(f"candle__{bname}_mom_{w}", np.concatenate([np.full(w, np.nan), x[w:] - x[:-w]]))
    lag = 1
    while len(names) < per_coin:
        for bname, x in base.items():
            add(f"candle__{bname}_lag_{lag}", np.concatenate([np.full(lag, np.nan), x[:-lag]]))
        lag += 1
    return names, cols


def coin_table(bars: pd.DataFrame, per_coin: int) -> tuple[pd.DataFrame, str]:
    """One coin's feature table (timestamp + float32 columns): the real generators when they exist."""
    try:
        from workflow_scripts.features import build_features
    except ImportError:
        names, cols = synthetic_features(bars, per_coin, len(bars))
        arr = np.empty((len(bars), len(cols)), dtype=np.float32, order="F")
        for j, col in enumerate(cols):
            arr[:, j] = col
        frame = pd.DataFrame(arr, columns=names, copy=False)
        frame.insert(0, "timestamp", bars["timestamp"].array)
        return frame, "synthetic generators over real bars"
    return build_features(
        bars, config_group("features", "seed_scale")
    ), "build_features(bars, features=seed_scale)"


def build_training_table(per_coin: int) -> tuple[pd.DataFrame, str]:
    """BTCUSDT cross-coin table (3 coins), training rows only, feature columns only."""
    bars = {sym: load_bars(sym) for sym in COINS}
    n = len(bars["BTCUSDT"])
    split = {"train": {"lo": 0, "hi": int(n * TRAIN_FRAC)}, "horizon": 50}
    train = segment_positions(split, "train", n)
    tables = {}
    for sym in COINS:
        tables[sym], source = coin_table(bars[sym], per_coin)
    try:
        from workflow_scripts.features import add_cross_coin
    except ImportError:
        own = tables["BTCUSDT"]
        parts = [own.drop(columns="timestamp")] + [
            t.drop(columns="timestamp").add_prefix(f"{sym}__")
            for sym, t in tables.items()
            if sym != "BTCUSDT"
        ]
        full = pd.concat(parts, axis=1)  # bench bars are aligned (same timestamps)
    else:
        full = add_cross_coin(tables["BTCUSDT"], {s: t for s, t in tables.items() if s != "BTCUSDT"})
        full = full.drop(columns="timestamp")
    del tables
    frame = full.iloc[train].copy()
    del full
    return frame, source


# ---- (a) screening -----------------------------------------------------------------------------------------
def screening_child(per_coin: int, block: int) -> dict:
    t0 = time.perf_counter()
    frame, source = build_training_table(per_coin)
    build_s = time.perf_counter() - t0
    rss_before = _rss_mib()
    peak_reset = _reset_peak()
    t0, cpu0 = time.perf_counter(), time.process_time()
    kept, report = screen_features(frame, {**config_group("screening"), "corr_block_size": block})
    screen_s, screen_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "source": source,
        "rows": int(frame.shape[0]),
        "columns": int(frame.shape[1]),
        "kept": len(kept),
        "dropped_by_reason": report["reason"].replace("", "kept").value_counts().to_dict(),
        "kept_by_source": pd.Series([feature_source(c) or "own" for c in kept]).value_counts().to_dict(),
        "build_s": round(build_s, 1),
        "screen_s": round(screen_s, 1),
        "screen_cpu_s": round(screen_cpu, 1),
        "frame_mib": round(frame.memory_usage(index=False).sum() / 2**20, 0),
        "rss_before_screen_mib": round(rss_before, 0),
        "peak_rss_during_screen_mib": round(_rss_mib("VmHWM"), 0) if peak_reset else None,
        "peak_rss_process_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        "corr_block_size": block,
    }


def run_screening(per_coin: int, block: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--_screen-child", "--per-coin", str(per_coin), "--block", str(block)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- (b) selection -----------------------------------------------------------------------------------------
def swing_like_targets(bars: pd.DataFrame, variants: int) -> pd.DataFrame:
    """Per variant int8 codes -1 no event, 0 neither, 1 breakout, 2 reversion from the real bars (bench
    only)."""
    c = bars["close"].to_numpy(np.float64)
    logc = np.log(c)
    out = {}
    grid = [(w, k) for w in (2, 3, 5, 10, 20) for k in (1.0, 2.0)]
    for w, k in grid[:variants]:
        past = np.concatenate([np.full(w, np.nan), logc[w:] - logc[:-w]])
        fut = np.concatenate([logc[w:] - logc[:-w], np.full(w, np.nan)])
        sigma = pd.Series(np.concatenate([[np.nan], np.diff(logc)])).rolling(
            24 * 7
        ).std().to_numpy() * np.sqrt(w)
        event = np.abs(past) > k * sigma
        cont = np.sign(past) * fut
        code = np.where(cont > 0.5 * sigma, 1, np.where(cont < -0.5 * sigma, 2, 0))
        code = np.where(event & np.isfinite(fut) & np.isfinite(sigma), code, -1)
        out[f"high_breakout_k{k}_th0.5_w{w}"] = code.astype(np.int8)
    return pd.DataFrame(out)


def naive_select(X, names, fit_pos, y_fit, val_pos, y_val, params, spec) -> pd.DataFrame:
    """The rebuild the shared dataset replaces: a fresh Dataset (and validation Dataset) for every variant."""
    import lightgbm as lgb

    train = lgb.Dataset(X[fit_pos], label=y_fit, feature_name=list(names), params=dataset_params(params))
    valid = lgb.Dataset(X[val_pos], label=y_val, reference=train)
    booster = lgb.train(
        variant_params(params, spec["seed"]),
        train,
        num_boost_round=spec["num_boost_round"],
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(spec["early_stopping_rounds"], verbose=False)],
    )
    return importance_table(booster, spec["top_k"], iteration=booster.best_iteration or None)


def run_selection(n_variants: int, n_columns: int, per_coin: int) -> dict:
    bars = load_bars("BTCUSDT")
    n = len(bars)
    table, source = coin_table(bars, max(per_coin, 2 * n_columns))
    feats = [c for c in table.columns if c != "timestamp"]
    step = max(len(feats) // n_columns, 1)  # spread over all families and lookbacks
    names = feats[::step][:n_columns]
    X = table[names].to_numpy(dtype=np.float32)
    X = np.ascontiguousarray(X)
    del table
    targets = swing_like_targets(bars, n_variants)
    horizon = 20
    split = {"train": {"lo": 0, "hi": int(n * TRAIN_FRAC)}, "horizon": horizon}
    train = segment_positions(split, "train", n)
    spec = config_group("selection")
    params = spec["params"]
    union, variants = plan_window(targets, train, list(targets.columns), spec, horizon)

    t0, c0 = time.perf_counter(), time.process_time()
    shared = build_shared_dataset(X[union], names, params)
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    shared_s, naive_s, shared_cpu, naive_cpu, overlap, rows = [], [], [], [], [], []
    tables = []
    for tid, v in variants.items():
        t0, c0 = time.perf_counter(), time.process_time()
        tab = select_for_variant(
            shared,
            np.searchsorted(union, v.fit_pos),
            v.y_fit,
            np.searchsorted(union, v.val_pos),
            v.y_val,
            params,
            top_k=spec["top_k"],
            seed=spec["seed"],
            num_boost_round=spec["num_boost_round"],
            early_stopping_rounds=spec["early_stopping_rounds"],
        )
        shared_s.append(time.perf_counter() - t0)
        shared_cpu.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        ref = naive_select(X, names, v.fit_pos, v.y_fit, v.val_pos, v.y_val, params, spec)
        naive_s.append(time.perf_counter() - t0)
        naive_cpu.append(time.process_time() - c0)
        a, b = set(tab["feature"]), set(ref["feature"])
        overlap.append(len(a & b) / max(len(a | b), 1))
        rows.append((len(v.fit_pos), len(v.val_pos), tab.attrs["best_iteration"]))
        tables.append(tab)
        print(
            f"  {tid}: fit {len(v.fit_pos)} val {len(v.val_pos)} best_it {tab.attrs['best_iteration']} "
            f"shared {shared_s[-1]:.1f}s (cpu {shared_cpu[-1]:.1f}) "
            f"naive {naive_s[-1]:.1f}s (cpu {naive_cpu[-1]:.1f}) "
            f"top-{spec['top_k']} Jaccard {overlap[-1]:.2f}",
            flush=True,
        )
    agg = aggregate_selection(tables, spec["keep_min"], spec["keep_max"], spec["score_coverage"])
    per_shared = (build_s + sum(shared_s)) / len(shared_s)
    per_naive = sum(naive_s) / len(naive_s)
    per_shared_cpu = (build_cpu + sum(shared_cpu)) / len(shared_cpu)
    per_naive_cpu = sum(naive_cpu) / len(naive_cpu)
    return {
        "source": source,
        "variants": len(variants),
        "columns": len(names),
        "union_rows": len(union),
        "shared_build_s": round(build_s, 2),
        "shared_train_mean_s": round(float(np.mean(shared_s)), 2),
        "shared_per_variant_incl_build_s": round(per_shared, 2),
        "naive_per_variant_s": round(per_naive, 2),
        "speedup_incl_build": round(per_naive / per_shared, 2),
        "speedup_excl_build": round(per_naive / float(np.mean(shared_s)), 2),
        "cpu_shared_build_s": round(build_cpu, 2),
        "cpu_shared_per_variant_incl_build_s": round(per_shared_cpu, 2),
        "cpu_naive_per_variant_s": round(per_naive_cpu, 2),
        "cpu_speedup_incl_build": round(per_naive_cpu / per_shared_cpu, 2),
        "cpu_speedup_excl_build": round(per_naive_cpu / float(np.mean(shared_cpu)), 2),
        "top_k_jaccard_mean": round(float(np.mean(overlap)), 3),
        "aggregated_candidates": len(agg),
        "aggregated_selected": int(agg["selected"].sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("screening", "selection", "both"), default="both")
    ap.add_argument("--per-coin", type=int, default=5000)
    ap.add_argument("--block", type=int, default=1024)
    ap.add_argument("--variants", type=int, default=10)
    ap.add_argument("--columns", type=int, default=2000)
    ap.add_argument("--_screen-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._screen_child:
        print(json.dumps(screening_child(args.per_coin, args.block)))
        return
    print(f"host: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}", flush=True)
    if args.part in ("screening", "both"):
        print("(a) screening", flush=True)
        print(json.dumps(run_screening(args.per_coin, args.block), indent=2), flush=True)
    if args.part in ("selection", "both"):
        print("(b) selection: shared binned dataset + subset vs naive rebuild", flush=True)
        print(json.dumps(run_selection(args.variants, args.columns, args.per_coin), indent=2), flush=True)
    print(f"load at end {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
