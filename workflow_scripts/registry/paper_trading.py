"""Paper trading of the registry's deployed slots: the glue between the registry (slots: store.deployed; the
deployed model of each: store.load_model(model="deployed"), the refit; live features: predictions.py) and the
ledgers of workflow_scripts/lifecycle/paper.py (docs/LIFECYCLE.md). Used by `swingflow paper` (ops/cli.py)
and the workflow rule paper_trade (rules/lifecycle.smk).

After a paper update the champion rules are applied to the forward evidence (`judge`): a challenger compared
with its champion on the paper bars both have (lifecycle/compare.compare), a deployed champion demoted when
its paper record falls below the floor (compare.demotion, store.demote). Both are decided on the ledgers'
state alone, so a second call on the same ledgers changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.agents import paper as agent_paper
from workflow_scripts.evaluation.metrics import BARS_PER_YEAR
from workflow_scripts.lifecycle import compare as cmp
from workflow_scripts.lifecycle import paper
from workflow_scripts.models.folder import check_vin
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


# ---- agent slots (side "both": a position in [-1, 1]; agents/paper.py) -------------------------------------
def update_agent_slot(
    registry_dir, info: Mapping[str, Any], bars: pd.DataFrame, features: pd.DataFrame, ledger_dir=None
) -> dict:
    """Extend one deployed slot's ledger of an agent, hybrid or agent ensemble: the bars after its
    `last_bar` through its exported TorchScript policy (an ensemble: its members' combined as in its
    evaluation; a hybrid: fed its production models' probabilities of each bar) in the same environment
    (costs, scoring settings) as its validation score (predictions.agent_replay_inputs / agent_policy)."""
    model = reg.load_model(registry_dir, info["vin"], model="deployed")
    cfg, part, obs = pr.agent_replay_inputs(registry_dir, model, bars, features)
    costs = artifacts.read_json(model.folder / "costs.json")
    record = agent_paper.paper_record(
        pr.agent_policy(model, cfg),
        obs,
        part,
        cfg["last_bar"],
        env=cfg["env"],
        costs=costs,
        sigma_bars=int(cfg["sigma_bars"]),
    )
    metrics = artifacts.read_json(model.folder / "metrics.json")
    test = (metrics.get("test") or {}).get("after_costs") or {}
    summary = {
        "slot": int(info["slot"]),
        "vin": info["vin"],
        "symbol": info["symbol"],
        "side": reg.AGENT_SIDE,
        "window": int(cfg["window"]),
        "target": reg.AGENT_TARGET,
        "model": "policy",
        "training_span": {"last_bar": cfg["last_bar"]},
        "paper_start": record["paper_start"],
        "paper_end": record["paper_end"],
        "bars_per_year": BARS_PER_YEAR,
        "env": cfg["env"],
        "costs": costs,
        "evidence": {"n_bars": record["n_bars"], "n_trades": record["n_trades"]},
        "paper": record["paper"],
        "claimed": {k: test.get(k) for k in paper.CLAIMED_KEYS}
        | {"grade": (metrics.get("test") or {}).get("grade", {}).get("grade"), "segment": "test"},
    }
    return paper.write_ledger(
        paper.ledger_dir_of(registry_dir, ledger_dir), info["slot"], info["vin"], record, summary
    )


def _read_features(features_dir, symbol: str) -> pd.DataFrame:
    p = Path(features_dir) / f"{symbol}.parquet"
    if not p.is_file():
        raise FileNotFoundError(
            f"no feature table for {symbol}: {p} (pass --features, the folder of results/features)"
        )
    return pd.read_parquet(p)


def paper_trade(
    registry_dir,
    bars_dir,
    ledger_dir=None,
    *,
    symbols: Sequence[str] | None = None,
    slots: Sequence[int] | None = None,
    history_bars: int | None = None,
    skip_missing: bool = False,
    features_dir=None,
) -> list[dict]:
    """Every deployed slot (store.deployed), or those of `symbols` / `slots`: extend its ledger with the bars
    of `bars_dir` it has not recorded yet. Returns the ledgers' summaries (plus `appended`, `ledger`); with
    `skip_missing` a slot whose bars are not in `bars_dir` gives {"slot", "vin", "skipped": why} instead of
    an error (the workflow rule: a slot deployed from another universe). An agent slot (side "both",
    update_agent_slot) also reads the symbol's feature table from `features_dir`; without one it is skipped
    (with `skip_missing`) or refused."""
    out = []
    for info in reg.deployed(registry_dir):
        if (symbols and info["symbol"] not in symbols) or (
            slots is not None and int(info["slot"]) not in slots
        ):
            continue
        if info.get("side") == reg.AGENT_SIDE:
            try:
                if features_dir is None:
                    raise FileNotFoundError(
                        f"slot {info['slot']} serves an agent: its paper trading reads the feature table "
                        "(swingflow paper --features results/features)"
                    )
                bars = read_bars(bars_dir, [info["symbol"]])[info["symbol"]]
                features = _read_features(features_dir, info["symbol"])
            except FileNotFoundError as exc:
                if not skip_missing:
                    raise
                out.append({"slot": int(info["slot"]), "vin": info["vin"], "skipped": str(exc)})
                continue
            out.append(update_agent_slot(registry_dir, info, bars, features, ledger_dir))
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


# ---- the champion rules on forward evidence ----------------------------------------------------------------
def paper_evidence(registry_dir, vin: str, ledger_dir=None) -> cmp.Evidence | None:
    """A model's paper record as compare.Evidence: its ledger with the most bars (a record depends on the
    bars and the model, not on the slot that replays it), None when it has no ledger."""
    root = paper.ledger_dir_of(registry_dir, ledger_dir)
    folders = sorted(root.glob(f"slot_*/{check_vin(vin)}/{paper.SUMMARY_FILE}")) if root.is_dir() else []
    records = [paper.ledger_evidence(f.parent) for f in folders]
    return max(records, key=lambda ev: len(ev.timestamps)) if records else None


EvidenceOf = Callable[[str], "cmp.Evidence | None"]


def _challenge(
    registry_dir, symbol: str, side: str, spec: Mapping, evidence_of: EvidenceOf, now
) -> dict | None:
    """The first challenger (best paper Sharpe on the bars it shares with the champion first) significantly
    better than the champion on their common paper bars (>= compare.min_bars) replaces it; None when none
    does. Nothing is written for a challenger that does not (its standing stays, the call stays
    idempotent)."""
    slot = reg.read_champions(registry_dir, symbol)["sides"].get(side) or {}
    champion, rules = slot.get("champion"), spec["compare"]
    theirs = evidence_of(champion) if champion else None
    if theirs is None:
        return None
    profiles = list(spec["promote_gate_profiles"])
    index = reg.read_index(registry_dir)["models"]
    pairs = {}
    for vin in sorted({c["vin"] for c in slot.get("challengers", [])}):
        passed, profile, _ = reg.eligibility(index.get(vin, {}))
        ours = evidence_of(vin) if vin in index and passed and profile in profiles else None
        pair = cmp.choose_evidence((None, None), (ours, theirs), rules) if ours is not None else (None, None)
        if pair[0] is not None:
            pairs[vin] = pair
    sharpe = {
        v: cmp.annualised_sharpe(a.on(b.timestamps).returns, a.bars_per_year) for v, (a, b) in pairs.items()
    }
    for vin in sorted(pairs, key=lambda v: (sharpe[v] is None, -(sharpe[v] or 0.0), v)):
        verdict = cmp.compare(*pairs[vin], rules)
        if verdict["beats"]:
            decision = reg.promote(registry_dir, vin, gate_profiles=profiles, verdict=verdict, now=now)
            return {
                "event": "promoted",
                "symbol": symbol,
                "side": side,
                "vin": vin,
                "replaced": champion,
                "reason": decision["reason"],
                "evidence": dict(verdict["reason"]),
            }
    return None


def _demotion(
    registry_dir, symbol: str, side: str, spec: Mapping, evidence_of: EvidenceOf, now
) -> dict | None:
    """The slot's champion, when deployed, demoted if its paper record reaches the minimum evidence and falls
    below the floor (config registry.demotion); None otherwise."""
    champion = (reg.read_champions(registry_dir, symbol)["sides"].get(side) or {}).get("champion")
    serving = [int(d["slot"]) for d in reg.deployed(registry_dir) if d["vin"] == champion]
    if not champion or not serving:
        return None
    verdict = cmp.demotion(evidence_of(champion), spec["demotion"])
    done = reg.demote(registry_dir, symbol, side, verdict, now=now, vin=champion)
    # the slots keep serving the demoted model until an operator deploys another (`swingflow deploy`)
    return None if done is None else {"event": "demoted", "vin": champion, "slots": serving} | done


def judge(registry_dir, spec: Mapping, ledger_dir=None, *, symbols: Sequence[str] | None = None, now=None):
    """The champion rules on the paper ledgers, for every champion slot (symbol, side) of `symbols` (all when
    None); spec: config registry (compare, demotion, promote_gate_profiles).

    Per slot, repeated until nothing changes (a restored or promoted champion is judged in turn; every change
    retires a model, so it ends): a challenger significantly better than the champion on their common paper
    bars replaces it (promote, recorded as at registration with source "paper"); then a deployed champion with
    enough paper evidence below the floor is demoted (store.demote: the previous champion restored, the reason
    recorded). Returns the changes, [] when nothing changed (a second call on the same ledgers)."""
    cache: dict[str, cmp.Evidence | None] = {}

    def evidence_of(vin: str) -> cmp.Evidence | None:
        if vin not in cache:
            cache[vin] = paper_evidence(registry_dir, vin, ledger_dir)
        return cache[vin]

    slots = sorted(
        (r["symbol"], r["side"]) for r in reg.roster(registry_dir) if not symbols or r["symbol"] in symbols
    )
    events = []
    for symbol, side in slots:
        limit = 2 * len(reg.read_index(registry_dir)["models"]) + 2  # a guard: each change retires a model
        for _ in range(limit):
            event = _challenge(registry_dir, symbol, side, spec, evidence_of, now) or _demotion(
                registry_dir, symbol, side, spec, evidence_of, now
            )
            if event is None:
                break
            events.append(event)
        else:
            raise reg.RegistryError(f"{symbol}/{side}: the champion rules did not settle in {limit} changes")
    return events


def judgement_message(events: Sequence[Mapping[str, Any]]) -> tuple[str, dict]:
    """The notification of champion changes on paper evidence (ops/notify.deliver): text and payload."""
    lines = [f"swingflow paper: {len(events)} champion change(s) on paper evidence"]
    for e in events:
        ev = e.get("evidence") or {}
        bars = ev.get("bars") or {}
        where = f"{bars.get('count')} bars {bars.get('first')} .. {bars.get('last')}"
        if e["event"] == "demoted":
            after = e.get("champion") or "none (no previous champion)"
            lines.append(
                f"- {e['symbol']}/{e['side']} DEMOTED {e['vin']}: {ev.get('why')} ({where}); champion now "
                f"{after}; slot(s) {e.get('slots')} still serve it until `swingflow deploy`"
            )
        else:
            lines.append(
                f"- {e['symbol']}/{e['side']} {e['vin']} replaces {e['replaced']}: {ev.get('why')} ({where})"
            )
    return "\n".join(lines), {"event": "paper_judgement", "changes": [dict(e) for e in events]}
