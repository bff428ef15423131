"""Paper trading of the registry's deployed slots: the glue between the registry (slots: store.deployed; the
deployed model of each: store.load_model(model="deployed"), the refit; live features: predictions.py) and the
ledgers of workflow_scripts/lifecycle/paper.py (docs/LIFECYCLE.md). Used by `swingflow paper` (ops/cli.py)
and the workflow rule paper_trade (rules/lifecycle.smk)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.lifecycle import paper
from workflow_scripts.registry import predictions as pr
from workflow_scripts.registry import store as reg


def read_bars(bars_dir, symbols: Sequence[str]) -> dict[str, pd.DataFrame]:
    """{symbol: bars} from `bars_dir`/<SYMBOL>.parquet (results/ingest, or live bars)."""
    out = {}
    for s in sorted(set(symbols)):
        p = Path(bars_dir) / f"{s}.parquet"
        if not p.is_file():
            raise FileNotFoundError(f"no bars for {s}: {p} (pass the folder holding <SYMBOL>.parquet)")
        out[s] = pd.read_parquet(p)
    return out


def needed_symbols(model: reg.LoadedModel, symbol: str) -> list[str]:
    """The slot's symbol and every coin its features join (features.json `universe`)."""
    return sorted({symbol, *(model.feature_info.get("universe") or [])})


def features_for(
    model: reg.LoadedModel,
    bars_by_symbol: Mapping[str, pd.DataFrame],
    symbol: str,
    history_bars: int | None = None,
    builder: pr.FeatureBuilder | None = None,
) -> paper.FeaturesFor:
    """lifecycle.paper's `features_for`: the live-prediction path of registry/predictions.py (training code,
    `history_bars` trailing bars, features.json's spec and universe unless a `builder` is given)."""
    hist = int(history_bars) if history_bars is not None else pr.history_bars_for(model.feature_info)
    build = builder or pr.workflow_feature_builder(
        model.feature_info["spec"], model.feature_info.get("universe", [symbol])
    )
    return lambda after: pr.incremental_features(bars_by_symbol, symbol, after, hist, build)


def update_slot(
    registry_dir,
    info: Mapping[str, Any],
    bars_by_symbol: Mapping[str, pd.DataFrame],
    ledger_dir=None,
    *,
    history_bars: int | None = None,
    builder: pr.FeatureBuilder | None = None,
) -> dict:
    """Extend one deployed slot's ledger (`info`: its deployment_info.json) with its deployed model."""
    model = reg.load_model(registry_dir, info["vin"], model="deployed")
    symbol = info["symbol"]
    return paper.update_ledger(
        paper.ledger_dir_of(registry_dir, ledger_dir),
        info,
        model,
        bars_by_symbol[symbol],
        features_for(model, bars_by_symbol, symbol, history_bars, builder),
    )


def paper_trade(
    registry_dir,
    bars_dir,
    ledger_dir=None,
    *,
    symbols: Sequence[str] | None = None,
    slots: Sequence[int] | None = None,
    history_bars: int | None = None,
    skip_missing: bool = False,
) -> list[dict]:
    """Every deployed slot (store.deployed), or those of `symbols` / `slots`: extend its ledger with the bars
    of `bars_dir` it has not recorded yet. Returns the ledgers' summaries (plus `appended`, `ledger`); with
    `skip_missing` a slot whose bars are not in `bars_dir` gives {"slot", "vin", "skipped": why} instead of
    an error (the workflow rule: a slot deployed from another universe)."""
    out = []
    for info in reg.deployed(registry_dir):
        if (symbols and info["symbol"] not in symbols) or (
            slots is not None and int(info["slot"]) not in slots
        ):
            continue
        model = reg.load_model(registry_dir, info["vin"], model="deployed")
        try:
            bars = read_bars(bars_dir, needed_symbols(model, info["symbol"]))
        except FileNotFoundError as exc:
            if not skip_missing:
                raise
            out.append({"slot": int(info["slot"]), "vin": info["vin"], "skipped": str(exc)})
            continue
        out.append(
            paper.update_ledger(
                paper.ledger_dir_of(registry_dir, ledger_dir),
                info,
                model,
                bars[info["symbol"]],
                features_for(model, bars, info["symbol"], history_bars),
            )
        )
    return out


def claimed_columns(registry_dir, vin: str) -> dict:
    """The claimed (test, after costs) columns of a registered model."""
    entry = reg.get_entry(registry_dir, vin)
    return paper.claimed_columns(
        artifacts.read_json(reg.paths(registry_dir)["root"] / entry["folder"] / "metrics.json")
    )


def with_paper(registry_dir, rows: Sequence[Mapping[str, Any]], ledger_dir=None) -> list[dict]:
    """Rows naming a `vin` (the champion roster) with the model's claimed (test) columns and, when a ledger
    exists for it, its paper columns (a model never deployed keeps them empty)."""
    by_vin = paper.paper_by_vin(paper.ledger_dir_of(registry_dir, ledger_dir))
    out = []
    for r in rows:
        row = dict(r) | claimed_columns(registry_dir, r["vin"])
        if r["vin"] in by_vin:
            row |= {k: v for k, v in by_vin[r["vin"]].items() if k.startswith(("claimed_", "paper_"))}
        out.append(row)
    return out
