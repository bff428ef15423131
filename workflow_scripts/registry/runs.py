"""One workflow run's registration (rule register_models): every production folder of the run goes into the
registry, then champion or challenger per (symbol, side) on validation evidence, then the run is recorded.

- Run id: `run-` + 12 hex of the sha256 over the folders' file hashes (sha256.txt without training_log.json,
  the one file that differs between identical trainings), so the same production folders give the same run,
  and a rerun with nothing new writes nothing to the registry (already registered identical folders are
  neither re-registered nor promoted again: no patch bump, no new champion). A VIN registered before with the
  same model but other metadata is a patch bump and keeps its standing (champion, challenger, retired).
- Champion / challenger per (symbol, side) on validation evidence, never a test metric (docs/LIFECYCLE.md):
  each production folder carries its per-bar after-cost validation returns (evaluation/evidence.py); a model
  is eligible when its gate verdict ON VALIDATION passed under a `promote_gate_profiles` profile; newcomers
  are judged best first (annualised Sharpe on the validation bars common to all of them), each against the
  champion of the moment by a paired Newey-West test on the bars both have evidence for (lifecycle/compare.py,
  config registry.compare: alpha, min_bars, min_trades). The reason (measure, bars compared, statistic,
  p-value, decision) goes into champions/<SYMBOL>.json. When a newcomer and the champion both have paper
  ledgers sharing at least compare.min_bars bars (a VIN registered again after it was paper-traded), they are
  compared on those paper bars instead (`decide`'s `paper` hook, registry/paper_trading.paper_evidence).
  Challengers that gather paper evidence later are judged after each paper update (paper_trading.judge).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workflow_scripts.lifecycle import compare as cmp
from workflow_scripts.registry import paper_trading as pt
from workflow_scripts.registry import store as reg

log = logging.getLogger("swingflow.registry_run")


@dataclass
class SymbolData:
    """The files one symbol's scoring reads: the cross-coin feature table and, per window, targets and
    split."""

    features: Path
    targets: dict[int, Path] = field(default_factory=dict)
    splits: dict[int, Path] = field(default_factory=dict)


def symbol_data_from_paths(features: Sequence[str], targets: Sequence[str], splits: Sequence[str]) -> dict:
    """{symbol: SymbolData} from workflow paths (docs/CONTRACTS.md): results/features/{SYMBOL}.parquet,
    results/targets/{SYMBOL}/w{w}.parquet, results/splits/{SYMBOL}/w{w}.json."""
    out: dict[str, SymbolData] = {}
    for p in map(Path, features):
        out[reg.check_symbol(p.stem)] = SymbolData(features=p)
    for kind, paths in (("targets", targets), ("splits", splits)):
        for p in map(Path, paths):
            m = re.fullmatch(r"w(\d+)", p.stem)
            if not m or p.parent.name not in out:
                raise ValueError(
                    f"{p}: expected {kind}/<SYMBOL>/w<window> of a symbol with a feature table "
                    f"(have {sorted(out)})"
                )
            getattr(out[p.parent.name], kind)[int(m[1])] = p
    return out


def run_id(hashes: Sequence[Mapping[str, str]]) -> str:
    """`run-<12 hex>` from the {file: sha256} of a run's production folders (order does not matter; fit
    timings in training_log.json do not count: retraining the same models gives the same run)."""
    texts = sorted(json.dumps(reg.identity_hashes(h), sort_keys=True) for h in hashes)
    return "run-" + hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:12]


def _champions(registry_dir, symbol: str) -> dict[str, str]:
    sides = reg.read_champions(registry_dir, symbol)["sides"]
    return {side: slot["champion"] for side, slot in sorted(sides.items()) if slot.get("champion")}


def first_registration_order(evidence: Mapping[str, cmp.Evidence | None]) -> list[str]:
    """Newcomers of one slot, best first: annualised Sharpe of their per-bar validation returns on the bars
    common to all of them that have evidence (the same bars for everyone); without evidence last; ties by
    VIN."""
    have = {v: ev for v, ev in evidence.items() if ev is not None}
    common = None
    for ev in have.values():
        common = ev.timestamps if common is None else np.intersect1d(common, ev.timestamps)
    sharpe = {
        v: cmp.annualised_sharpe(ev.on(common).returns, ev.bars_per_year) if common is not None else None
        for v, ev in have.items()
    }
    return sorted(evidence, key=lambda v: (sharpe.get(v) is None, -(sharpe.get(v) or 0.0), v))


PaperHook = Callable[[str], "cmp.Evidence | None"]


def decide(
    registry_dir, entries: Sequence[dict], spec: Mapping, run: str, paper: PaperHook | None = None
) -> list[dict]:
    """Champion / challenger / rejected for the newly registered `entries` of one (symbol, side).

    Eligible: the gate verdict on validation passed under a profile of `promote_gate_profiles`. Newcomers are
    judged best first (first_registration_order), each against the champion of the moment: a first champion
    needs evidence reaching the minima; a challenger replaces the champion only when significantly better on
    the bars both have evidence for (lifecycle/compare.py; spec["compare"]: alpha, min_bars, min_trades).
    `paper(vin)` is the hook for forward evidence (paper ledger): when both candidates have enough paper bars
    in common they are compared there instead of on validation."""
    profiles = list(spec["promote_gate_profiles"])
    rules = spec["compare"]

    def ok(e):
        passed, profile, _ = reg.eligibility(e)
        return passed and profile in profiles

    eligible = [e for e in entries if ok(e)]
    decisions = [
        reg.promote(registry_dir, e["vin"], run=run, gate_profiles=profiles) for e in entries if not ok(e)
    ]
    if not eligible:
        return decisions
    symbol, side = eligible[0]["symbol"], eligible[0]["side"]
    evidence = {e["vin"]: reg.load_evidence(registry_dir, e["vin"]) for e in eligible}
    for vin in first_registration_order(evidence):
        current = _champions(registry_dir, symbol).get(side)
        if current is None:
            verdict = cmp.judge_first(evidence[vin], rules)
        else:
            validation = (evidence[vin], reg.load_evidence(registry_dir, current))
            forward = (paper(vin), paper(current)) if paper is not None else None
            verdict = cmp.compare(*cmp.choose_evidence(validation, forward, rules), rules)
        log.info("%s/%s %s vs %s: %s", symbol, side, vin, current, verdict["reason"].get("why"))
        decisions.append(reg.promote(registry_dir, vin, run=run, gate_profiles=profiles, verdict=verdict))
    return decisions


def register_run(
    registry_dir, folders: Sequence[str | Path], data: Mapping[str, SymbolData], spec: Mapping
) -> tuple[dict, dict]:
    """Register a run's production folders and decide champions; return (run status, roster).

    run status: {"run", "symbols": {SYMBOL: {"registered": [VIN...], "champion": {side: VIN}, "changed":
    bool}}} (the VINs of this run's folders; the champions after the run; whether any side's champion
    changed). roster: {"run", "champions": registry.roster(...)}. Every folder is verified and the new ones
    copied (store.stage) before the lock is taken; then registration, decisions and the run's records are one
    store.transaction: the index, champions, roster and run files are read once and written once, all or
    nothing (a failure leaves the registry as it was)."""
    folders = [Path(f) for f in folders]
    hashes = {f: reg.verify_folder(f) for f in folders}
    metas = {f: reg.read_model_meta(f) for f in folders}
    missing = sorted({m["symbol"] for m in metas.values()} - set(data))
    if missing:
        raise ValueError(f"no feature table / targets / splits given for {missing}")
    run = run_id(list(hashes.values()))
    symbols = sorted({m["symbol"] for m in metas.values()})
    before = {s: _champions(registry_dir, s) for s in symbols}
    known = reg.read_index(registry_dir)["models"]
    changed = [
        f
        for f in folders
        if reg.identity_hashes(known.get(metas[f]["vin"], {}).get("files", {}))
        != reg.identity_hashes(hashes[f])
    ]
    log.info("run %s: %d production folder(s), %d new or changed", run, len(folders), len(changed))
    staged: list[reg.Staged] = []
    try:
        for f in changed:
            staged.append(reg.stage(registry_dir, f))
        with reg.transaction(registry_dir):
            entries = [reg.add_staged(registry_dir, s, run=run, keep_identical=True) for s in staged]
            _decide_all(registry_dir, entries, known, spec, run)
            if entries:
                reg.write_run_summary(registry_dir, run)
            after = {s: _champions(registry_dir, s) for s in symbols}
            champions = reg.roster(registry_dir)
    finally:
        for s in staged:
            reg.discard(s)
    status = {"run": run, "symbols": {}}
    for s in symbols:
        status["symbols"][s] = {
            "registered": sorted(m["vin"] for m in metas.values() if m["symbol"] == s),
            "champion": after[s],
            "changed": after[s] != before[s],
        }
    return status, {"run": run, "champions": champions}


def _decide_all(
    registry_dir, entries: Sequence[dict], known: Mapping[str, dict], spec: Mapping, run: str
) -> list[dict]:
    """Judge the run's registered entries per (symbol, side): models new to the registry, and re-registered
    ones (same model, new metadata: a patch bump) that never had a standing (say a changed gate verdict). A
    champion, challenger or retired model keeps its standing, so a rerun never overrides an earlier decision
    or an operator's rollback."""
    lineages: dict[tuple[str, str], list[dict]] = {}
    for e in entries:
        if known.get(e["vin"], {}).get("status", "registered") in ("registered", "rejected"):
            lineages.setdefault((e["symbol"], e["side"]), []).append(e)
    out = []
    for (symbol, side), es in sorted(lineages.items()):
        for d in decide(registry_dir, es, spec, run, paper=lambda vin: pt.paper_evidence(registry_dir, vin)):
            log.info("%s/%s %s: %s (%s)", symbol, side, d["vin"], d["decision"], d.get("reason"))
            out.append(d)
    return out


# ---- the run's decision record (results/registry/decisions.json) -------------------------------------------
IDENTITY_KEYS = ("symbol", "side", "window", "target", "model_type", "model_sha256")


def identity(entry: Mapping) -> dict:
    """A registered model named without its VIN (whose grade and date come from the test segment and the
    refit): symbol, side, window, target, model kind and the sha256 of the evaluated model file."""
    return {k: entry[k] for k in IDENTITY_KEYS}


def _named(value, index: Mapping) -> dict | None:
    return identity(index[value]) if value in index else None


def decision_record(registry_dir, folders: Sequence[str | Path], spec: Mapping) -> dict:
    """What the registry decided about a run's production folders, with no test-derived byte in it: every
    candidate by identity() with its validation summary, its standing after the run and the decision that
    stands for it (champion / challenger: the latest of champions/<SYMBOL>.json `decisions`, its reason and
    validation or paper comparison, the champion before it by identity; rejected: why), and each slot's
    champion after the run. No VIN, no time: two runs whose train and validation bars agree write the same
    bytes, whatever their test bars (tests/lifecycle/test_test_segment_blind.py)."""
    index = reg.read_index(registry_dir)["models"]
    champions: dict[str, dict] = {}  # champions/<SYMBOL>.json, read once per symbol

    def sides_of(symbol: str) -> dict:
        if symbol not in champions:
            champions[symbol] = reg.read_champions(registry_dir, symbol)["sides"]
        return champions[symbol]

    candidates, slots = [], set()
    for folder in folders:
        entry = index[reg.read_model_meta(Path(folder))["vin"]]
        symbol, side = entry["symbol"], entry["side"]
        slots.add((symbol, side))
        history = sides_of(symbol).get(side, {}).get("decisions", [])
        last = next((d for d in reversed(history) if d["vin"] == entry["vin"]), None)
        refusal = reg.refusal_of(entry, spec["promote_gate_profiles"])
        if last is not None:
            decision = {k: v for k, v in last.items() if k not in ("vin", "at")}
            for key in ("champion_before", "champion_after"):
                if key in decision:
                    decision[key] = _named(decision[key], index)
        elif refusal is not None:
            decision = {"decision": "rejected", "reason": refusal}
        else:
            decision = None
        candidates.append(
            identity(entry)
            | {"validation": entry.get("validation"), "status": entry.get("status"), "decision": decision}
        )
    champion_of = {}
    for symbol, side in sorted(slots):
        vin = sides_of(symbol).get(side, {}).get("champion")
        champion_of[reg.lineage_key(symbol, side)] = _named(vin, index)
    key = [*IDENTITY_KEYS]
    return {
        "candidates": sorted(candidates, key=lambda c: [str(c[k]) for k in key]),
        "champions": champion_of,
    }


# ---- the RL line (rule register_agent_models, docs/AGENTS.md) ----------------------------------------------
def register_agents(registry_dir, packaged: str | Path, spec: Mapping | None = None) -> dict:
    """Register one symbol's packaged RL models (agents/package.py: results/agents/models/<SYMBOL>/<VIN>/):
    the CNN-LSTM first (an agent's registration records its sha256), then the policies, the agent ensemble
    and the hybrid (whose config.json names the production models it was built on, sha256s included). Already
    registered identical folders are left alone (a rerun writes nothing). With the registry config `spec`,
    the folders that carry validation evidence (the chosen agent, the agent ensemble, the hybrid) are then
    judged for the symbol's agent slot (side "both") by the same rules as the swing classifiers' slots
    (`decide`: validation gate, evidence minima, same-bars comparison with the champion, paper evidence once
    both have enough); trials and the CNN-LSTM carry none and are not judged. Returns {"symbol", "run",
    "models": [{vin, model_type, version, status, validation_value}], "decisions": [...]}."""
    root = Path(packaged)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    metas = {f: reg.model_meta(f) for f in folders}
    odd = [str(f) for f, m in metas.items() if not reg.is_agent(m)]
    if odd:
        raise reg.RegistryError(f"{root}: not RL line folders (config.json side 'both'): {odd}")
    symbols = sorted({m["symbol"] for m in metas.values()})
    if len(symbols) > 1:
        raise reg.RegistryError(f"{root}: folders of several symbols {symbols}; expected one")
    order = sorted(folders, key=lambda f: (metas[f]["model_type"] != "cnn_lstm", f.name))
    models, decisions = [], []
    staged: list[reg.Staged] = []
    known = reg.read_index(registry_dir)["models"]
    try:
        for f in order:
            staged.append(reg.stage(registry_dir, f))
        run = run_id([s.hashes for s in staged])
        with reg.transaction(registry_dir):  # one index write for the symbol's models, all or none
            entries = [reg.add_staged(registry_dir, s, run=run, keep_identical=True) for s in staged]
            judged = [e for e in entries if reg.load_evidence(registry_dir, e["vin"]) is not None]
            if spec is not None and judged:
                decisions = _decide_all(registry_dir, judged, known, spec, run)
    finally:
        for s in staged:
            reg.discard(s)
    entries = [reg.get_entry(registry_dir, e["vin"]) for e in entries]  # statuses after the decisions
    for entry in entries:
        models.append(
            {
                "vin": entry["vin"],
                "model_type": entry["model_type"],
                "version": entry["version"],
                "status": entry["status"],
                "validation_value": entry.get("score"),
                "dependencies": entry["dependencies"],
            }
        )
    return {
        "symbol": symbols[0] if symbols else root.name,
        "run": run if folders else None,
        "models": models,
        "decisions": [{k: d.get(k) for k in ("vin", "decision", "reason")} for d in decisions],
    }
