"""Entry of rule render_report: the report's sections (workflow_scripts/report_sections.py), one HTML file each."""

from pathlib import Path

from workflow_scripts import artifacts
from workflow_scripts import report_sections as rs


def tuning_label(path: Path) -> str:
    """results/tuning/stage2/w5.json -> 'stage2 w5'; .../stage3/BTCUSDT/w5/high.json -> 'stage3 BTCUSDT w5 high'."""
    parts = path.with_suffix("").parts
    i = next(k for k, p in enumerate(parts) if p.startswith("stage"))
    return " ".join(parts[i:])


def chosen_rows(choices: list[Path], evaluations: list[Path]) -> list[dict]:
    """Each chosen variant with its after-cost metrics from its evaluation file."""
    by_key = {(p.parent.name, p.name): p for p in map(Path, evaluations)}  # (symbol, w<window>) -> folder
    rows = []
    for c in map(artifacts.read_json, choices):
        best = c.get("best") or {}
        row = {"symbol": c["symbol"], "window": c["window"], "side": c["side"], **best}
        folder = by_key.get((c["symbol"], f"w{c['window']}"))
        if best.get("target") and folder is not None and (folder / f"{best['target']}.json").exists():
            after = artifacts.read_json(folder / f"{best['target']}.json").get("after_costs") or {}
            row.update({k: after.get(k) for k in ("max_drawdown", "sharpe", "total_return")})
        rows.append(row)
    return rows


def main(args) -> None:
    out = Path(args.outdir)
    quality = {artifacts.read_json(p)["symbol"]: artifacts.read_json(p) for p in args.quality}
    selected = {Path(p).parent.name: artifacts.read_json(p) for p in args.selected}
    importance = {Path(p).parent.name: Path(p).read_bytes() for p in args.importance}
    studies = {tuning_label(Path(p)): artifacts.read_json(p) for p in args.tuning}
    plots = {" ".join(Path(p).with_suffix("").parts[-3:]): Path(p).read_bytes() for p in args.plots}
    sections = {
        "quality": rs.quality_section(quality),
        "selection": rs.selection_section(selected, importance),
        "tuning": rs.tuning_section(studies),
        "evaluation": rs.evaluation_section(artifacts.read_json(args.evaluation_summary),
                                            chosen_rows(args.choices, args.evaluations), plots),
        "champions": rs.champions_section(artifacts.read_json(args.roster) if args.roster else []),
    }
    for name, text in sections.items():
        artifacts.write_text(out / f"{name}.html", text)
        print(f"{name}: {out / f'{name}.html'} ({len(text)} characters)")


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--quality", nargs="+", required=True)
    p.add_argument("--selected", nargs="+", required=True)
    p.add_argument("--importance", nargs="*", default=[])
    p.add_argument("--tuning", nargs="*", default=[])
    p.add_argument("--evaluation-summary", required=True)
    p.add_argument("--choices", nargs="+", required=True)
    p.add_argument("--evaluations", nargs="+", required=True)
    p.add_argument("--plots", nargs="*", default=[])
    p.add_argument("--roster", default=None)
    p.add_argument("--outdir", required=True)
    _cli.run(main, p.parse_args())
