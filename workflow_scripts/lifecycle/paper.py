"""Paper trading of the deployed slots (seed 004; docs/LIFECYCLE.md): bars newer than a model's training data
replayed through the slot's deployed model with the same trading rule, threshold and cost snapshot as its
evaluation, into an append-only, idempotent ledger per slot and model.

Which bars. The deployed model (the refit, models/folder.py) read labels up to `last_label_bar` (its last
training bar plus at most one label horizon); paper trading starts at the first bar AFTER that, so no bar
at or before the model's last training bar, nor any bar whose price its labels read, is ever traded. A bar
enters the ledger once its outcome is known: bars up to the data end minus one label horizon H
(`frontier`), so every trade entered on a ledger bar has exited inside the data and the ledger's past never
changes when bars are appended.

The replay reuses evaluation: the target's outcomes on the new bars (targets/swing_targets.build_targets with
the folder's horizon and sigma window), backtest.rows_from_targets, trading_rule.build_trades / apply_costs /
bar_returns with the evaluation's rule (threshold included) and cost snapshot (metrics.json `evaluation`),
metrics.trading_metrics. Features are rebuilt with the training code by the caller's `features_for`
(registry/paper_trading.py: registry/predictions.py's live path, as `predict --append` does); this module
reads no registry (it sits below it: the deployed slots, models and bars come from registry/paper_trading.py).

Ledger, `<ledger>/slot_<N>/<VIN>/` (LEDGER_FILES):
    equity.jsonl   one line per ledger bar: {"bar": ISO time, "equity": after-cost equity (1 before the first
                   paper bar), "ret": after-cost simple return of the bar}
    trades.jsonl   one line per trade, by entry bar: entry_time, exit_time, direction, pred_class, prob,
                   label, gross_ret, entry_cost, exit_cost, net_ret
    summary.json   the slot and model, spans, rule, cost snapshot, evidence (bars, trades), after-cost metrics
                   so far (`paper`) next to the evaluated model's test record (`claimed`)
Lines are canonical JSON (sorted keys, no spaces). Every call recomputes the whole paper record
deterministically, checks that the ledger's lines are its prefix (LedgerError otherwise: the past is never
rewritten) and appends the rest; with nothing new no file is touched (byte-identical).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock

from workflow_scripts import artifacts
from workflow_scripts.evaluation import metrics as M
from workflow_scripts.evaluation.backtest import rows_from_targets
from workflow_scripts.evaluation.costs import costs_from_snapshot
from workflow_scripts.evaluation.trading_rule import TradingRule, apply_costs, bar_returns, build_trades
from workflow_scripts.lifecycle import compare as cmp
from workflow_scripts.models.folder import LoadedModel, RegistryError, check_vin, training_span
from workflow_scripts.targets.grammar import parse_target_id
from workflow_scripts.targets.swing_targets import build_targets

EQUITY_FILE, TRADES_FILE, SUMMARY_FILE = "equity.jsonl", "trades.jsonl", "summary.json"
LEDGER_FILES = (EQUITY_FILE, TRADES_FILE, SUMMARY_FILE)
TRADE_KEYS = ("direction", "pred_class", "prob", "label", "gross_ret", "entry_cost", "exit_cost", "net_ret")
CLAIMED_KEYS = (
    "n_bars",
    "n_trades",
    "total_return",
    "sharpe",
    "sharpe_per_trade",
    "max_drawdown",
    "hit_rate",
)
WINDOW_MARGIN = (
    256  # extra bars predicted before the first paper bar: windowed (torch) models see their window
)


# features_for(after) -> the model's feature table (timestamp + columns) of the bars with timestamp > after
# (every bar when None), computed with enough trailing history (registry/predictions.incremental_features)
FeaturesFor = Callable[[pd.Timestamp | None], pd.DataFrame]


class LedgerError(ValueError):
    """A ledger cannot be extended without rewriting its past."""


def default_ledger_dir(registry_dir) -> Path:
    return Path(registry_dir) / "paper"


def ledger_dir_of(registry_dir, ledger_dir=None) -> Path:
    return Path(ledger_dir) if ledger_dir else default_ledger_dir(registry_dir)


def ledger_path(ledger_dir, slot: int, vin: str) -> Path:
    return Path(ledger_dir) / f"slot_{int(slot)}" / check_vin(vin)


def _line(obj: Mapping) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"


def _num(x) -> Any:
    """JSON-safe number (NaN/inf -> None), ints stay ints."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    return M._finite(float(x))


def replay_spec(model: LoadedModel) -> dict:
    """What the replay of a loaded (deployed) model needs, from its verified folder: target, window, side,
    horizon, sigma window, rule, cost snapshot, bars per year, training span, and the claimed test record."""
    folder = model.folder
    metrics = artifacts.read_json(folder / "metrics.json")
    cfg = artifacts.read_json(folder / "config.json")
    evaluation = metrics["evaluation"]
    replay = metrics.get("replay")
    members = folder / "members"
    if replay is None and members.is_dir():  # an ensemble: its members' target settings
        for m in sorted(p for p in members.iterdir() if p.is_dir()):
            replay = artifacts.read_json(m / "metrics.json").get("replay")
            if replay:
                break
    if not replay:
        raise RegistryError(
            f"model {model.vin}: metrics.json has no 'replay' block; retrain to paper-trade it"
        )
    span = training_span(folder, "deployed")
    if not span:
        raise RegistryError(f"model {model.vin}: no training span recorded; retrain to paper-trade it")
    after = evaluation["after_costs"]
    grade = metrics.get("grade")
    return {
        "target": str(evaluation.get("target") or cfg["target"]),
        "window": int(cfg["window"]),
        "side": str(cfg["side"]),
        "horizon": int(evaluation["segment"]["horizon"]),
        "sigma_min_bars": int(replay["sigma_min_bars"]),
        "rule": dict(evaluation["rule"]),
        "costs": dict(evaluation["costs"]),
        "bars_per_year": int(evaluation.get("bars_per_year") or M.BARS_PER_YEAR),
        "span": span,
        "claimed": {k: after.get(k) for k in CLAIMED_KEYS}
        | {"grade": grade.get("grade") if isinstance(grade, dict) else grade, "segment": "test"},
    }


def paper_record(
    model: LoadedModel, spec: Mapping[str, Any], bars: pd.DataFrame, features_for: FeaturesFor
) -> dict:
    """The whole paper record of one model on its symbol's `bars`: {"equity": [lines], "trades": [lines],
    "paper": metrics, "paper_start", "paper_end", "n_bars", "n_trades"}; deterministic in the bars."""
    bars = bars.reset_index(drop=True)
    ts = pd.to_datetime(bars["timestamp"], utc=True)
    n, horizon = len(bars), int(spec["horizon"])
    info_end = max(pd.Timestamp(spec["span"]["last_bar"]), pd.Timestamp(spec["span"]["last_label_bar"]))
    newer = np.flatnonzero((ts > info_end).to_numpy())
    frontier = n - 1 - horizon  # the last bar whose outcome is known
    empty = {"equity": [], "trades": [], "paper": None, "paper_start": None, "paper_end": None}
    if len(newer) == 0 or frontier < newer[0]:
        return empty | {"n_bars": 0, "n_trades": 0}
    lo = int(newer[0])
    close = bars["close"].to_numpy(dtype=float)
    target = parse_target_id(spec["target"])
    table = build_targets(bars, spec["window"], [target], horizon, spec["sigma_min_bars"])
    rows = rows_from_targets(table, spec["target"], horizon)
    keep = (rows["pos"] >= lo) & (rows["pos"] <= frontier)
    rows = {k: (v[keep] if isinstance(v, np.ndarray) else v) for k, v in rows.items()}
    start = ts.iloc[max(0, lo - WINDOW_MARGIN) - 1] if lo - WINDOW_MARGIN > 0 else None
    feats = features_for(start)
    proba_all = model.predict_proba(feats) if len(feats) else np.zeros((0, 3))
    at = pd.Index(pd.to_datetime(feats["timestamp"], utc=True)).get_indexer(ts.iloc[rows["pos"]])
    if (at < 0).any():
        raise RegistryError(f"model {model.vin}: features missing for {int((at < 0).sum())} paper bar(s)")
    rule = TradingRule.from_mapping(spec["rule"])
    trades = build_trades(
        pos=rows["pos"],
        side=rows["side"],
        proba=proba_all[at],
        label=rows["label"],
        barrier_logret=rows["barrier_logret"],
        horizon=horizon,
        close=close,
        rule=rule,
        exit_pos=rows["exit_pos"],
        exit_logret=rows["exit_logret"],
    )
    trades = apply_costs(trades, costs_from_snapshot(spec["costs"]), rows["sigma"])
    net = bar_returns(trades, close, lo, n, rule.position_size, net=True)[: frontier - lo + 1]
    equity = np.cumprod(1.0 + net)
    held = int(np.sum(np.minimum(trades["exit_pos"], frontier) - trades["entry_pos"]))
    paper = M.trading_metrics(net, trades["net_ret"], held, rule.position_size, spec["bars_per_year"])
    times = [t.isoformat() for t in ts]
    equity_lines = [
        _line({"bar": times[lo + i], "equity": _num(e), "ret": _num(r)})
        for i, (e, r) in enumerate(zip(equity, net))
    ]
    trade_lines = [
        _line(
            {"entry_time": times[int(trades["entry_pos"][j])], "exit_time": times[int(trades["exit_pos"][j])]}
            | {k: _num(trades[k][j]) for k in TRADE_KEYS}
        )
        for j in range(len(trades["entry_pos"]))
    ]
    return {
        "equity": equity_lines,
        "trades": trade_lines,
        "paper": {k: _num(v) if isinstance(v, (int, float, np.number)) else v for k, v in paper.items()},
        "paper_start": times[lo],
        "paper_end": times[frontier],
        "n_bars": len(net),
        "n_trades": len(trade_lines),
    }


def _extend(path: Path, lines: Sequence[str]) -> int:
    """Append the lines beyond the file's own; refuse when the file is not a prefix. Returns lines added."""
    old = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.is_file() else []
    if len(old) > len(lines) or list(lines[: len(old)]) != old:
        first = next((i for i, (a, b) in enumerate(zip(old, lines)) if a != b), min(len(old), len(lines)))
        raise LedgerError(
            f"{path}: the recomputed paper record differs from the ledger at line {first + 1} (bars revised "
            "or removed?); refusing to rewrite the past: move the ledger away to start it again"
        )
    new = list(lines[len(old) :])
    if new:  # the old bytes stay as they are; the file is replaced whole (atomic), never half-appended
        artifacts.write_text(path, "".join(old) + "".join(new))
    return len(new)


def update_ledger(
    ledger_dir, info: Mapping[str, Any], model: LoadedModel, bars: pd.DataFrame, features_for: FeaturesFor
) -> dict:
    """Extend the ledger of one deployed slot (`info`: its deployment_info.json, registry/store.deployed;
    `model` its deployed model, `bars` its symbol's bars) with the bars it has not recorded yet; returns the
    summary plus `appended` {bars, trades} and `ledger` (the folder)."""
    symbol, vin, slot = info["symbol"], info["vin"], int(info["slot"])
    spec = replay_spec(model)
    record = paper_record(model, spec, bars, features_for)
    summary = {
        "slot": slot,
        "vin": vin,
        "symbol": symbol,
        "side": spec["side"],
        "window": spec["window"],
        "target": spec["target"],
        "model": model.source,
        "training_span": spec["span"],
        "paper_start": record["paper_start"],
        "paper_end": record["paper_end"],
        "horizon": spec["horizon"],
        "bars_per_year": spec["bars_per_year"],
        "rule": spec["rule"],
        "costs": spec["costs"],
        "evidence": {"n_bars": record["n_bars"], "n_trades": record["n_trades"]},
        "paper": record["paper"],
        "claimed": spec["claimed"],
    }
    return write_ledger(ledger_dir, slot, vin, record, summary)


def write_ledger(
    ledger_dir, slot: int, vin: str, record: Mapping[str, Any], summary: Mapping[str, Any]
) -> dict:
    """Append a recomputed paper record (`record` "equity" / "trades" lines) to the ledger of (slot, VIN)
    and refresh its summary.json (only when it changed): the one writer of ledgers, for the swing slots and
    the agents' (agents/paper.py). Returns the summary plus `appended` {bars, trades} and `ledger`."""
    folder = ledger_path(ledger_dir, slot, vin)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".lock")):
        added = {
            "bars": _extend(folder / EQUITY_FILE, record["equity"]),
            "trades": _extend(folder / TRADES_FILE, record["trades"]),
        }
        text = json.dumps(dict(summary), indent=2, sort_keys=True, default=str) + "\n"
        path = folder / SUMMARY_FILE
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            artifacts.write_text(path, text)
    return dict(summary) | {"appended": added, "ledger": str(folder)}


def _epoch_s(times: Sequence[str]) -> np.ndarray:
    """ISO times -> int64 epoch seconds (whatever datetime unit pandas parses them into)."""
    ts = pd.to_datetime(pd.Series(list(times), dtype=object), utc=True)
    return ((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)


def ledger_evidence(folder) -> cmp.Evidence:
    """A ledger folder's paper record as compare.Evidence (source "paper"): per-bar after-cost returns of
    equity.jsonl, trades (entry, exit) of trades.jsonl, bars per year of summary.json; epoch seconds. What
    the champion rules (compare.compare on common paper bars, compare.demotion) read."""
    folder = Path(folder)
    summary_path = folder / SUMMARY_FILE
    if not summary_path.is_file():
        raise LedgerError(f"{summary_path}: missing (a ledger folder holds {', '.join(LEDGER_FILES)})")
    summary = artifacts.read_json(summary_path)
    if summary.get("bars_per_year") is None:
        raise LedgerError(f"{summary_path}: no 'bars_per_year'; run `swingflow paper` once to refresh it")
    rows = {}
    for name, keys in ((EQUITY_FILE, ("bar", "ret")), (TRADES_FILE, ("entry_time", "exit_time"))):
        path = folder / name
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        try:
            docs = [json.loads(line) for line in lines]
            rows[name] = [[d[k] for k in keys] for d in docs]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise LedgerError(f"{path}: every line must be a JSON object with {list(keys)} ({exc})") from exc
    equity, trades = rows[EQUITY_FILE], rows[TRADES_FILE]
    bad = next((i for i, (_, r) in enumerate(equity) if not isinstance(r, (int, float))), None)
    if bad is not None:
        raise LedgerError(f"{folder / EQUITY_FILE}: line {bad + 1} has no finite 'ret' ({equity[bad][1]!r})")
    rets = [float(r) for _, r in equity]
    return cmp.Evidence(
        str(summary["vin"]),
        _epoch_s([b for b, _ in equity]),
        np.asarray(rets, dtype=float),
        np.column_stack([_epoch_s([e for e, _ in trades]), _epoch_s([x for _, x in trades])])
        if trades
        else np.zeros((0, 2), dtype=np.int64),
        source="paper",
        bars_per_year=float(summary["bars_per_year"]),
    )


def read_summaries(ledger_dir) -> list[dict]:
    """Every ledger's summary.json under `ledger_dir` (slot, then VIN order)."""
    root = Path(ledger_dir)
    if not root.is_dir():
        return []
    paths = sorted(root.glob(f"slot_*/*/{SUMMARY_FILE}"), key=lambda p: (int(p.parts[-3][5:]), p.parts[-2]))
    return [artifacts.read_json(p) for p in paths]


def claimed_vs_paper(summary: Mapping[str, Any]) -> dict:
    """One display row: the claimed (test) record next to the paper one."""
    claimed, paper = summary.get("claimed") or {}, summary.get("paper") or {}
    ev = summary.get("evidence") or {}
    return {
        "slot": summary.get("slot"),
        "vin": summary.get("vin"),
        "symbol": summary.get("symbol"),
        "side": summary.get("side"),
        "model": summary.get("model"),
        "claimed_trades": claimed.get("n_trades"),
        "claimed_return": claimed.get("total_return"),
        "claimed_sharpe": claimed.get("sharpe"),
        "paper_bars": ev.get("n_bars"),
        "paper_trades": ev.get("n_trades"),
        "paper_return": paper.get("total_return"),
        "paper_sharpe": paper.get("sharpe"),
        "paper_since": summary.get("paper_start"),
        "paper_until": summary.get("paper_end"),
    }


def claimed_columns(metrics: Mapping[str, Any]) -> dict:
    """The claimed (test, after costs) columns of a model, from its metrics.json."""
    after = (metrics.get("evaluation") or {}).get("after_costs") or {}
    return {
        "claimed_trades": after.get("n_trades"),
        "claimed_return": after.get("total_return"),
        "claimed_sharpe": after.get("sharpe"),
    }


def paper_by_vin(ledger_dir) -> dict[str, dict]:
    """{VIN: claimed-vs-paper row} of the latest-slot ledger of each VIN (for champions and the dashboard)."""
    return {s["vin"]: claimed_vs_paper(s) for s in read_summaries(ledger_dir)}


TEXT_COLUMNS = ("claimed (test) n/ret/SR", "paper bars:n/ret/SR")


def _fmt(x, fmt: str = "{:.3f}") -> str:
    return "-" if x is None else fmt.format(x)


def claimed_paper_text(row: Mapping[str, Any]) -> tuple[str, str]:
    """The two TEXT_COLUMNS cells of a row holding claimed_* / paper_* keys (tables of the CLI and the
    dashboard): trades / after-cost total return / annualised Sharpe; the paper cell leads with its bars."""
    claimed = "/".join(
        (
            _fmt(row.get("claimed_trades"), "{}"),
            _fmt(row.get("claimed_return")),
            _fmt(row.get("claimed_sharpe")),
        )
    )
    if row.get("paper_bars") is None:
        return claimed, "-"
    rest = "/".join(
        (_fmt(row.get("paper_trades"), "{}"), _fmt(row.get("paper_return")), _fmt(row.get("paper_sharpe")))
    )
    return claimed, f"{row['paper_bars']}:{rest}"
