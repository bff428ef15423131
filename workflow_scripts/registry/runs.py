"""One workflow run's registration (rule register_models): every production folder of the run goes into the
registry, then champion or challenger per (symbol, side) on a common recent window, then the run is recorded.

- Run id: `run-` + 12 hex of the sha256 over the folders' file hashes (sha256.txt without training_log.json, the
  one file that differs between identical trainings), so the same production folders give the same run, and a
  rerun with nothing new writes nothing to the registry (already registered identical folders are neither
  re-registered nor promoted again: no patch bump, no new champion). A VIN registered before with the same model
  but other metadata is a patch bump and keeps its standing (champion, challenger, retired).
- Common recent window (per symbol): the bars from the latest test-segment start over the run's windows (inside
  the test segment of every window, so no model of this run trained or early-stopped on it), cut to the last
  `recent_bars` bars. Every candidate and the current champion are scored there: macro average precision of the
  model's probabilities against its own target's labels (codes 0/1/2) on the same bars. A model that cannot be
  scored (its window, target or feature columns are not in this run, or fewer than `min_rows` labelled rows) has
  no score: a champion without a score is replaced by a scored newcomer, a newcomer without one cannot win.
- Newcomers of one (symbol, side) are promoted best score first, each against the champion of the moment with the
  configured margin (registry.promote): so at most the best of them takes over and the others are challengers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from workflow_scripts import artifacts
from workflow_scripts.models.folder import input_columns
from workflow_scripts.registry import store as reg

log = logging.getLogger("swingflow.registry_run")


@dataclass
class SymbolData:
    """The files one symbol's scoring reads: the cross-coin feature table and, per window, targets and split."""

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
    """`run-<12 hex>` from the {file: sha256} of a run's production folders (order does not matter; fit timings
    in training_log.json do not count: retraining the same models gives the same run)."""
    texts = sorted(json.dumps(reg.identity_hashes(h), sort_keys=True) for h in hashes)
    return "run-" + hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:12]


def common_window_start(splits: Sequence[Mapping], recent_bars: int | None) -> int:
    """First bar position of the common recent window: the latest test start over the splits, cut to the last
    `recent_bars` bars (None: no cut)."""
    bars = {int(s["bars"]) for s in splits}
    if len(bars) != 1:
        raise ValueError(f"splits disagree on the number of bars: {sorted(bars)}")
    start = max(int(s["test"]["lo"]) for s in splits)
    if recent_bars is not None:
        start = max(start, bars.pop() - int(recent_bars))
    return start


def recent_scores(models: Sequence[reg.LoadedModel], data: SymbolData, spec: Mapping) -> dict[str, dict]:
    """{vin: {"score": float | None, "rows": labelled rows, "reason": why there is no score}} on the common recent
    window of `data` (module docstring)."""
    splits = [artifacts.read_json(p) for _, p in sorted(data.splits.items())]
    start = common_window_start(splits, spec.get("recent_bars"))
    available = set(pq.read_schema(data.features).names)
    needed = input_columns(models, available)
    feats = pd.read_parquet(data.features, columns=["timestamp", *needed])
    if len(feats) != int(splits[0]["bars"]):
        raise ValueError(f"{data.features}: {len(feats)} rows, the splits count {splits[0]['bars']} bars")
    # Models see the whole table (a windowed model reads the bars before a row); only window rows are scored.
    in_window = np.arange(len(feats)) >= start
    labels: dict[int, pd.DataFrame] = {}
    out = {}
    for m in models:
        window, target = int(m.entry["window"]), m.entry["target"]
        missing = [c for c in m.features if c not in available and c not in m.encoder_columns]
        if window not in data.targets:
            out[m.vin] = {"score": None, "rows": 0, "reason": f"window w{window} is not in this run"}
            continue
        if missing:
            out[m.vin] = {
                "score": None,
                "rows": 0,
                "reason": f"{len(missing)} feature column(s) not in {data.features}, e.g. {missing[:3]}",
            }
            continue
        if window not in labels:
            labels[window] = pd.read_parquet(data.targets[window])
            if not labels[window]["timestamp"].equals(feats["timestamp"]):
                raise ValueError(f"{data.targets[window]}: timestamps differ from {data.features}")
        if target not in labels[window].columns:
            out[m.vin] = {
                "score": None,
                "rows": 0,
                "reason": f"target {target} is not in {data.targets[window]}",
            }
            continue
        y = np.where(in_window, labels[window][target].to_numpy(), -1)
        rows = int(np.isin(y, (0, 1, 2)).sum())
        if rows < int(spec.get("min_rows", 1)):
            out[m.vin] = {"score": None, "rows": rows, "reason": f"{rows} labelled rows < min_rows"}
            continue
        score = reg.macro_ap_scorer(feats, y)(m)
        out[m.vin] = {"score": score if math.isfinite(score) else None, "rows": rows, "reason": None}
    return out


def _champions(registry_dir, symbol: str) -> dict[str, str]:
    sides = reg.read_champions(registry_dir, symbol)["sides"]
    return {side: slot["champion"] for side, slot in sorted(sides.items()) if slot.get("champion")}


def decide(registry_dir, entries: Sequence[dict], data: SymbolData, spec: Mapping, run: str) -> list[dict]:
    """Champion / challenger / rejected for the newly registered `entries` of one (symbol, side)."""
    profiles = list(spec["promote_gate_profiles"])
    eligible = [e for e in entries if e.get("gate_passed") and e.get("gate_profile") in profiles]
    decisions = [
        reg.promote(registry_dir, e["vin"], run=run, gate_profiles=profiles)
        for e in entries
        if e not in eligible
    ]
    if not eligible:
        return decisions
    symbol, side = eligible[0]["symbol"], eligible[0]["side"]
    current = _champions(registry_dir, symbol).get(side)
    vins = [e["vin"] for e in eligible] + ([current] if current else [])
    scored = recent_scores([reg.load_model(registry_dir, v) for v in vins], data, spec)
    for vin, s in scored.items():
        log.info(
            "%s/%s %s: recent score %s on %d rows%s",
            symbol,
            side,
            vin,
            s["score"],
            s["rows"],
            f" ({s['reason']})" if s["reason"] else "",
        )
    scores = {v: s["score"] for v, s in scored.items()}
    order = sorted(eligible, key=lambda e: (scores[e["vin"]] is None, -(scores[e["vin"]] or 0.0), e["vin"]))
    for e in order:
        decisions.append(
            reg.promote(
                registry_dir,
                e["vin"],
                scores=scores,
                margin=float(spec["margin"]),
                run=run,
                gate_profiles=profiles,
            )
        )
    return decisions


def register_run(
    registry_dir, folders: Sequence[str | Path], data: Mapping[str, SymbolData], spec: Mapping
) -> tuple[dict, dict]:
    """Register a run's production folders and decide champions; return (run status, roster).

    run status: {"run", "symbols": {SYMBOL: {"registered": [VIN...], "champion": {side: VIN}, "changed": bool}}}
    (the VINs of this run's folders; the champions after the run; whether any side's champion changed).
    roster: {"run", "champions": registry.roster(...)}. Every folder is verified before anything is written."""
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
    entries = [reg.register(registry_dir, f, run=run, keep_identical=True) for f in changed]
    # Judged: models new to the registry, and re-registered ones (same model, new metadata: a patch bump) that
    # never had a standing (say a changed gate verdict). A champion, challenger or retired model keeps its
    # standing, so a rerun never overrides an earlier decision or an operator's rollback.
    lineages: dict[tuple[str, str], list[dict]] = {}
    for e in entries:
        if known.get(e["vin"], {}).get("status", "registered") in ("registered", "rejected"):
            lineages.setdefault((e["symbol"], e["side"]), []).append(e)
    for (symbol, side), es in sorted(lineages.items()):
        for d in decide(registry_dir, es, data[symbol], spec, run):
            log.info("%s/%s %s: %s (%s)", symbol, side, d["vin"], d["decision"], d.get("reason"))
    if entries:
        reg.write_run_summary(registry_dir, run)
    status = {"run": run, "symbols": {}}
    for s in symbols:
        after = _champions(registry_dir, s)
        status["symbols"][s] = {
            "registered": sorted(m["vin"] for m in metas.values() if m["symbol"] == s),
            "champion": after,
            "changed": after != before[s],
        }
    return status, {"run": run, "champions": reg.roster(registry_dir)}
