"""A live terminal view of the workflow and the registry (rich): progress of each stage (outputs that exist
under results/ against those the resolved config expects), recent models with grades, champions and deployed
slots with their claimed (test) record next to their paper record (lifecycle/paper.py ledgers).

Everything is read from files, nothing from the running Snakemake process, so the view works from any shell
while the workflow runs (or after it). `swingflow dashboard --once` prints one frame.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table

from workflow_scripts.lifecycle import paper
from workflow_scripts.registry import paper_trading
from workflow_scripts.registry import store as reg

# stage -> (glob under results/, how many the config expects: f(symbols, windows, targets per window, sides)).
# One file per job, the file a job writes last where it writes several (sha256.txt of a production folder).
STAGES: dict[str, tuple[str, Any]] = {
    "ingest": ("ingest/*.parquet", lambda s, w, t, d: s),
    "features": ("features/*.parquet", lambda s, w, t, d: s),
    "targets": ("targets/*/w*.parquet", lambda s, w, t, d: s * w),
    "splits": ("splits/*/w*.json", lambda s, w, t, d: s * w),
    "stage1": ("stage1/*/w*/*/metrics.json", lambda s, w, t, d: s * w * t),
    "evaluation": ("evaluation/stage1/*/w*/*.json", lambda s, w, t, d: s * w * t),
    "best_variant": ("best_variant/*/w*/*.report.json", lambda s, w, t, d: s * w * d),
    "tuning stage 2": ("tuning/stage2/w*.json", lambda s, w, t, d: w),
    "tuning stage 3": ("tuning/stage3/*/w*/*.json", lambda s, w, t, d: s * w * d),
    "tuning stage 4": ("tuning/stage4/*/w*/*.json", lambda s, w, t, d: s * w * d),
    "production": ("production/*/w*/*/sha256.txt", lambda s, w, t, d: s * w * d),
    "registry": ("registry/run_status.json", lambda s, w, t, d: 1),
    "predictions": ("predictions/*.parquet", lambda s, w, t, d: s),
}
GRADE_STYLE = {
    "S": "bold magenta",
    "A+": "bold green",
    "A": "green",
    "A-": "green",
    "B+": "cyan",
    "B": "cyan",
    "B-": "cyan",
    "C": "yellow",
    "D": "red",
    "F": "bold red",
}


def _grid_sizes(results_dir: Path) -> tuple[int, int, int, int] | None:
    """(symbols, windows, targets per window, sides) from results/config/resolved.json, or None if not written
    yet."""
    path = results_dir / "config" / "resolved.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
        t = cfg["targets"]
        per_window = len(t["types"]) * len(t["std_thresholds"]) * len(t["barrier_thresholds"])
        sides = len({str(kind).split("_")[0] for kind in t["types"]})
        return len(cfg["universe"]["symbols"]), len(t["windows"]), per_window, sides
    except (OSError, KeyError, TypeError, ValueError):
        return None


def workflow_progress(results_dir: str | Path = "results") -> list[dict]:
    """[{stage, done, expected (None if unknown)}] counted from the files under results/."""
    results_dir = Path(results_dir)
    sizes = _grid_sizes(results_dir)
    out = []
    for stage, (pattern, expect) in STAGES.items():
        done = sum(1 for p in results_dir.glob(pattern) if not p.name.startswith("."))
        out.append({"stage": stage, "done": done, "expected": expect(*sizes) if sizes else None})
    return out


def last_run(results_dir: str | Path = "results") -> dict | None:
    """results/registry/run_status.json (rule register_models), or None before the registry stage ran."""
    path = Path(results_dir) / "registry" / "run_status.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def snapshot(
    registry_dir,
    results_dir: str | Path = "results",
    recent: int = 10,
    top: int | None = None,
    symbol: str | None = None,
) -> dict:
    """Everything one frame shows, as plain data (`swingflow dashboard --once --json` prints it). `top` and
    `symbol` limit the champions to those a frame lists (champion_view; all, in roster order, when neither
    is given); `champion_summary` counts them all. The claimed and paper columns are read for the listed
    champions only: per champion they cost a read of the registry index (~0.15 s at 4,800 models)."""
    models = reg.list_models(registry_dir) if reg.paths(registry_dir)["index"].is_file() else []
    champions = reg.roster(registry_dir)
    listed = champion_view(champions, top, symbol) if top or symbol else champions
    return {
        "progress": workflow_progress(results_dir),
        "last_run": last_run(results_dir),
        "recent": models[:recent],
        "models": len(models),
        "champions": paper_trading.with_paper(registry_dir, listed),
        "champion_summary": grade_summary(champions),
        "champions_total": len(champions),
        "deployed": reg.deployed(registry_dir),
        "paper": {
            f"{r['slot']}/{r['vin']}": paper.claimed_vs_paper(r)
            for r in paper.read_summaries(paper.default_ledger_dir(registry_dir))
        },
        "agents": agent_section(registry_dir, results_dir),  # the RL line's own section (below)
    }


def _grade(g: str | None) -> str:
    return f"[{GRADE_STYLE.get(g or '', 'dim')}]{g or '-'}[/]"


def grade_summary(champions: list[dict]) -> str:
    """One line for any number of champions: how many, of how many symbols, and how many per grade (best
    grade first): `800 champion(s) of 400 symbol(s): S 80, A+ 80, A 81, ...`."""
    counts: dict[str, int] = {}
    for c in champions:
        counts[c.get("grade") or "-"] = counts.get(c.get("grade") or "-", 0) + 1
    order = [*GRADE_STYLE, *sorted(set(counts) - set(GRADE_STYLE))]
    grades = ", ".join(f"{g} {counts[g]}" for g in order if g in counts)
    symbols = len({c["symbol"] for c in champions})
    return f"{len(champions)} champion(s) of {symbols} symbol(s)" + (f": {grades}" if grades else "")


def champion_view(champions: list[dict], top: int | None = None, symbol: str | None = None) -> list[dict]:
    """The champions a frame lists: those of `symbol` (all when None), best grade first, then score, then
    symbol and side; the first `top` of them (all when None or 0). 400 coins have 800 champions: a frame
    lists the best and grade_summary counts them all."""
    rank = {g: i for i, g in enumerate(GRADE_STYLE)}
    rows = [c for c in champions if symbol is None or c["symbol"] == symbol]
    rows.sort(
        key=lambda c: (
            rank.get(c.get("grade") or "", len(rank)),
            -(c.get("score") or 0.0),
            c["symbol"],
            c["side"],
        )
    )
    return rows[:top] if top else rows


def _names(names: list[str], most: int = 10) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def render(snap: dict, registry_dir: Any = "", top: int | None = None, symbol: str | None = None) -> Group:
    """One frame. `top`/`symbol` limit the champions listed (champion_view); the caption counts them all."""
    prog = Table(title="Workflow progress (files under results/)", expand=True)
    for col in ("stage", "done", "expected", ""):
        prog.add_column(col, justify="right" if col in ("done", "expected") else "left")
    for row in snap["progress"]:
        exp = row["expected"]
        bar = ProgressBar(total=exp or 1, completed=min(row["done"], exp or 0), width=30) if exp else "?"
        prog.add_row(row["stage"], str(row["done"]), "?" if exp is None else str(exp), bar)

    run = snap.get("last_run")
    if run:
        changed = sorted(s for s, v in run["symbols"].items() if v.get("changed"))
        registered = sum(len(v.get("registered", [])) for v in run["symbols"].values())
        prog.caption = (
            f"last registry run {run['run']}: {registered} model(s) of {len(run['symbols'])} symbol(s); "
            f"champion changed: {_names(changed) or 'none'}"
        )
        if run.get("no_model"):
            # sides whose stage-1 variants were all skipped: reasons in results/production/summary.md
            prog.caption += f"; without a model: {len(run['no_model'])} (results/production/summary.md)"

    recent = Table(title=f"Recent models ({snap['models']} registered)", expand=True)
    for col in ("created", "VIN", "ver", "symbol", "side", "w", "grade", "gate", "score", "status"):
        recent.add_column(col)
    for e in snap["recent"]:
        recent.add_row(
            e["created"],
            e["vin"],
            e["version"],
            e["symbol"],
            e["side"],
            str(e["window"]),
            _grade(e.get("grade")),
            "[green]pass[/]" if e.get("gate_passed") else "[red]fail[/]",
            "-" if e.get("score") is None else f"{e['score']:.4f}",
            e.get("status", ""),
        )

    shown = champion_view(snap["champions"], top, symbol)
    total = snap.get("champions_total", len(snap["champions"]))
    champs = Table(title="Champions" + (f" of {symbol}" if symbol else ""), expand=True)
    champs.caption = snap.get("champion_summary") or grade_summary(snap["champions"])
    champs.caption += f"; listed: the {len(shown)} best (--top, --symbol)" if len(shown) < total else ""
    claimed_col, paper_col = paper.TEXT_COLUMNS
    for col in ("symbol", "side", "VIN", "ver", "grade", "since", "challengers", "rollbacks"):
        champs.add_column(col)
    champs.add_column(claimed_col)
    champs.add_column(paper_col)
    for c in shown:
        champs.add_row(
            c["symbol"],
            c["side"],
            c["vin"],
            str(c["version"]),
            _grade(c.get("grade")),
            str(c.get("since")),
            str(c["challengers"]),
            str(c["previous"]),
            *paper.claimed_paper_text(c),
        )

    slots = Table(title="Deployed slots", expand=True)
    for col in ("slot", "VIN", "symbol", "side", "ver", "deployed", claimed_col, paper_col):
        slots.add_column(col)
    for d in snap["deployed"]:
        row = (snap.get("paper") or {}).get(f"{d['slot']}/{d['vin']}", {})
        slots.add_row(
            str(d["slot"]),
            d["vin"],
            d["symbol"],
            d["side"],
            d["version"],
            d["deployed"],
            *paper.claimed_paper_text(row),
        )
    return Group(
        Panel(f"swingflow registry [bold]{registry_dir}[/]", expand=True),
        prog,
        recent,
        champs,
        slots,
        *render_agents(snap.get("agents") or {}),
    )


def run(
    registry_dir,
    results_dir: str | Path = "results",
    *,
    once: bool = False,
    interval: float = 2.0,
    console: Console | None = None,
    recent: int = 10,
    top: int | None = None,
    symbol: str | None = None,
) -> None:
    console = console or Console()
    if once:
        console.print(
            render(snapshot(registry_dir, results_dir, recent, top, symbol), registry_dir, top, symbol)
        )
        return
    with Live(
        render(snapshot(registry_dir, results_dir, recent, top, symbol), registry_dir, top, symbol),
        console=console,
        refresh_per_second=4,
        screen=False,
    ) as live:
        try:
            while True:
                time.sleep(interval)
                frame = snapshot(registry_dir, results_dir, recent, top, symbol)
                live.update(render(frame, registry_dir, top, symbol))
        except KeyboardInterrupt:
            pass


# ---- the RL line (docs/AGENTS.md): agent trials by validation value, agent paper slots ---------------------
AGENT_TRIALS_GLOB = "agents/models/*/trials.json"  # rule package_agent_models: every trial of a symbol


def agent_section(registry_dir, results_dir: str | Path = "results", top: int = 10) -> dict:
    """{"trials": the `top` scored agent trials over every symbol by validation value (code, symbol, kind,
    grade, validation value and trades, packaged or not), "n_trials", "slots": deployed agent slots (side
    "both") with their paper record}. Validation numbers only: the trials are ranked as the studies chose."""
    trials = []
    for path in sorted(Path(results_dir).glob(AGENT_TRIALS_GLOB)):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for t in doc.get("trials", []):
            val = t.get("validation") or {}
            trials.append(
                {
                    "symbol": doc.get("symbol", path.parent.name),
                    "code": t["code"],
                    "kind": t.get("kind"),
                    "grade": val.get("grade"),
                    "value": t.get("value") if t.get("scored") else None,
                    "n_trades": val.get("n_trades"),
                    "packaged": bool(t.get("folder")),
                }
            )
    ranked = sorted(trials, key=lambda t: (t["value"] is None, -(t["value"] or 0.0), t["code"]))
    ledgers = {
        f"{r['slot']}/{r['vin']}": paper.claimed_vs_paper(r)
        for r in paper.read_summaries(paper.default_ledger_dir(registry_dir))
    }
    slots = [
        d | {"paper": ledgers.get(f"{d['slot']}/{d['vin']}", {})}
        for d in reg.deployed(registry_dir)
        if d.get("side") == reg.AGENT_SIDE
    ]
    return {"trials": ranked[: max(0, int(top))], "n_trials": len(trials), "slots": slots}


def render_agents(section: dict) -> list[Table]:
    """The agent tables: top trials (code, grade, validation value) and agent paper slots; none without
    agents."""
    out = []
    if section.get("trials"):
        table = Table(title=f"Agent trials: top by validation ({section['n_trials']} trials)", expand=True)
        for col in ("symbol", "code", "kind", "grade", "validation", "trades", "packaged"):
            table.add_column(col)
        for t in section["trials"]:
            table.add_row(
                t["symbol"],
                t["code"],
                str(t["kind"]),
                _grade(t["grade"]),
                "-" if t["value"] is None else f"{t['value']:.4f}",
                str(t["n_trades"]),
                "yes" if t["packaged"] else "",
            )
        out.append(table)
    if section.get("slots"):
        table = Table(title="Agent paper slots (position in [-1, 1], side both)", expand=True)
        claimed_col, paper_col = paper.TEXT_COLUMNS
        for col in ("slot", "code", "symbol", "ver", "deployed", claimed_col, paper_col, "paper until"):
            table.add_column(col)
        for d in section["slots"]:
            row = d["paper"]
            table.add_row(
                str(d["slot"]),
                d["vin"],
                d["symbol"],
                d["version"],
                d["deployed"],
                *paper.claimed_paper_text(row),
                str(row.get("paper_until") or "-"),
            )
        out.append(table)
    return out
