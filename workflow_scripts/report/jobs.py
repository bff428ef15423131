"""Entry of rule render_report (rules/report.smk): the report's sections
(workflow_scripts/report/sections.py), one HTML file each, written to the rule's output of the same name."""

from pathlib import Path

from workflow_scripts import artifacts
from workflow_scripts.report import sections as rs


def _tuning_label(path: Path) -> str:
    """results/tuning/stage2/w5.json -> 'stage2 w5'; .../stage3/BTCUSDT/w5/high.json -> 'stage3 BTCUSDT w5
    high'."""
    parts = path.with_suffix("").parts
    i = next(k for k, p in enumerate(parts) if p.startswith("stage"))
    return " ".join(parts[i:])


def _chosen_rows(reports: list[Path], evaluations: list[Path]) -> list[dict]:
    """Each chosen variant with its after-cost metrics from its evaluation file."""
    by_key = {(p.parent.name, p.name): p for p in map(Path, evaluations)}  # (symbol, w<window>) -> folder
    rows = []
    for c in map(artifacts.read_json, reports):
        best = c.get("best") or {}
        row = {"symbol": c["symbol"], "window": c["window"], "side": c["side"], **best}
        folder = by_key.get((c["symbol"], f"w{c['window']}"))
        if best.get("target") and folder is not None and (folder / f"{best['target']}.json").exists():
            after = artifacts.read_json(folder / f"{best['target']}.json").get("after_costs") or {}
            row.update({k: after.get(k) for k in ("max_drawdown", "sharpe", "total_return")})
        rows.append(row)
    return rows


def render_report(job) -> None:
    i = job.input
    quality = {artifacts.read_json(p)["symbol"]: artifacts.read_json(p) for p in i.quality}
    selected = {Path(p).parent.name: artifacts.read_json(p) for p in i.selected}
    importance = {Path(p).parent.name: Path(p).read_bytes() for p in i.importance}
    studies = {_tuning_label(Path(p)): artifacts.read_json(p) for p in i.tuning}
    plots = {" ".join(Path(p).with_suffix("").parts[-3:]): Path(p).read_bytes() for p in i.plots}
    roster = getattr(i, "roster", None)
    sections = {
        "quality": rs.quality_section(quality),
        "selection": rs.selection_section(selected, importance),
        "tuning": rs.tuning_section(studies),
        "evaluation": rs.evaluation_section(
            artifacts.read_json(i.summary), _chosen_rows(i.reports, i.evaluations), plots
        ),
        "champions": rs.champions_section(artifacts.read_json(roster) if roster else []),
    }
    for name, text in sections.items():
        path = getattr(job.output, name)
        artifacts.write_text(path, text)
        print(f"{name}: {path} ({len(text)} characters)")
