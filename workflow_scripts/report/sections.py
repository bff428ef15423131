"""The sections of `snakemake --report`: plain functions from the run's JSON documents (and its PNG plots) to
self-contained HTML fragments (tables, images embedded as data URIs). rules/report.smk renders one file per
section and flags it for the report; docs/OPERATIONS.md ("Reports").

Sections and their sources:
    quality      results/ingest/{symbol}.quality.json               span, rows, gaps, halts, duplicates,
                                                                    data-quality findings
    selection    results/selection/{symbol}/selected.json, importance.png   selected features and importances
    tuning       results/tuning/stage2/w{window}.json, stage{3,4}/{symbol}/w{window}/{side}.json
                                                                    trials, best
    evaluation   results/evaluation/summary.json, the chosen variants' evaluation files, equity plots
                 (after costs)
    champions    results/registry/roster.json                       the registry's champions after the run
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from workflow_scripts.data import quality as quality_checks

SECTIONS = ("quality", "selection", "tuning", "evaluation", "champions")
TOP_FEATURES = 25


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return html.escape(", ".join(map(str, value)))
    return html.escape(str(value))


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f'<table border="1" cellpadding="3"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}"/>'


def page(title: str, parts: Sequence[str]) -> str:
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head><body>'
        f"<h1>{html.escape(title)}</h1>" + "\n".join(parts) + "</body></html>\n"
    )


def _png_of(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(
        buf, format="png", dpi=80, metadata={"Software": None}
    )  # no version stamp: byte-stable output
    plt.close(fig)
    return buf.getvalue()


# ---- sections ----------------------------------------------------------------------------------------------
def quality_findings(quality: Mapping[str, Mapping]) -> list[dict]:
    """Every symbol's ingest findings (workflow_scripts/data/quality.py) plus the one cross-coin check: a
    symbol whose data ends more than its ingest.ending.max_bars before the universe's last bar (warn only)."""
    rows = [f for _, q in sorted(quality.items()) for f in q.get("findings") or []]
    ending = {s: q["checks"]["ending"] for s, q in quality.items() if "checks" in q}
    late = quality_checks.universe_endings(
        {s: quality[s]["last"] for s in ending}, {s: e["settings"]["max_bars"] for s, e in ending.items()}
    )
    return rows + [f | {"action": "warn"} for f in late]


def quality_section(quality: Mapping[str, Mapping], max_rows: int = 200) -> str:
    findings = quality_findings(quality)
    counts = {}
    for f in findings:
        counts.setdefault(f["symbol"], {}).setdefault(f["check"], 0)
        counts[f["symbol"]][f["check"]] += 1
    rows = [
        {
            **q,
            "symbol": sym,
            "gaps": q.get("gap_count"),
            "halts": len(q.get("halt_bars") or []),
            **{f"{c} findings": (counts.get(sym) or {}).get(c, 0) for c in quality_checks.CHECKS},
        }
        for sym, q in sorted(quality.items())
    ]
    cols = [
        "symbol",
        "first",
        "last",
        "rows",
        "missing_bars",
        "gaps",
        "halts",
        "duplicates",
        "zero_volume_bars",
        *(f"{c} findings" for c in quality_checks.CHECKS),
    ]
    parts = ["<p>Hourly bars after ingest (UTC).</p>", table(rows, cols), "<h2>Findings</h2>"]
    if findings:
        shown = [{**f, "bars": " to ".join(f["bars"])} for f in findings[:max_rows]]
        parts.append(
            f"<p>{len(findings)} finding(s) of the data-quality checks (config/ingest); action warn: "
            "recorded, the run went on.</p>"
        )
        parts.append(table(shown, ["symbol", "check", "action", "bars", "value", "limit", "rule"]))
        if len(findings) > max_rows:
            parts.append(f"<p>{len(findings) - max_rows} more in results/ingest/*.quality.json.</p>")
    else:
        parts.append("<p>No findings of the data-quality checks (config/ingest).</p>")
    return page("Data quality per coin", parts)


def selection_section(selected: Mapping[str, Mapping], importance_png: Mapping[str, bytes]) -> str:
    parts = []
    for sym, sel in sorted(selected.items()):
        scores = sel.get("scores") or {}
        chosen = [{"feature": f, **(scores.get(f) or {})} for f in sel.get("features", [])]
        chosen.sort(key=lambda r: (-(r.get("score") or 0.0), r["feature"]))
        parts.append(
            f"<h2>{html.escape(sym)}</h2><p>{sel.get('n_selected')} of {sel.get('n_candidates')} candidate "
            f"features selected over {sel.get('n_variants')} target variants; top {TOP_FEATURES} by "
            "importance score:</p>"
        )
        parts.append(
            table(chosen[:TOP_FEATURES], ["feature", "rank", "score", "frequency", "mean_norm_gain"])
        )
        if sym in importance_png:
            parts.append(image(importance_png[sym], f"importance {sym}"))
    return page("Selected features and importances", parts)


def best_so_far(trials: Sequence[Mapping], maximize: bool = True) -> list[float]:
    """Best value after each finished trial, in trial order (the tuning history curve)."""
    out, best = [], None
    for t in sorted(trials, key=lambda t: t.get("number", 0)):
        v = t.get("value")
        if t.get("state") != "COMPLETE" or v is None:
            continue
        best = v if best is None else (max(best, v) if maximize else min(best, v))
        out.append(best)
    return out


def tuning_section(studies: Mapping[str, Mapping]) -> str:
    """`studies`: {label such as "stage3 BTCUSDT w5 high": the stage's result JSON}."""
    if not studies:
        return page("Tuning history", ["<p>No tuning results in this run.</p>"])
    rows = [
        {
            "study": label,
            "trials": s.get("finished_trials"),
            "budget trials": (s.get("budget") or {}).get("n_trials"),
            "best value": s.get("best_value"),
            "best trial": s.get("best_trial"),
            "retried": len(s.get("retried_trials") or []),
            "stopped by": s.get("stopped_by"),
        }
        for label, s in sorted(studies.items())
    ]
    # No seconds here: the report is part of the byte-identical rerun (tests/reliability); the spend in
    # seconds is in each stage's JSON (spent_seconds) and the job's benchmark file.
    # "stopped by": trial_budget (reproducible) or minutes_cap (the wall-clock safety cap bound: rerun to
    # continue the study to its trial budget).
    cols = ["study", "trials", "budget trials", "best value", "best trial", "retried", "stopped by"]
    parts = [table(rows, cols)]
    capped = sorted(label for label, s in studies.items() if s.get("stopped_by") == "minutes_cap")
    if capped:
        parts.insert(
            0,
            f"<p><b>{len(capped)} studies stopped by the minutes safety cap before their trial budget</b> "
            "(not reproducible across machines; rerun to continue them): "
            f"{html.escape(', '.join(capped))}</p>",
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for stage in sorted({label.split()[0] for label in studies}):
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for label, s in sorted(studies.items()):
            if label.split()[0] == stage and best_so_far(s.get("trials") or []):
                ax.plot(best_so_far(s["trials"]), label=label, linewidth=1)
        ax.set_xlabel("finished trial")
        ax.set_ylabel("best value so far")
        ax.set_title(f"{stage}: best value by trial")
        if ax.lines and len(ax.lines) <= 12:
            ax.legend(fontsize=6)
        parts.append(image(_png_of(fig), f"{stage} history"))
    return page("Tuning history", parts)


def evaluation_section(
    summary: Mapping, chosen_metrics: Sequence[Mapping], equity_png: Mapping[str, bytes]
) -> str:
    """`chosen_metrics`: one row per chosen variant with its after-cost metrics (max drawdown included)."""
    grades = [{"grade": g, "variants": n} for g, n in (summary.get("grade_counts") or {}).items()]
    n_chosen = len(summary.get("chosen") or [])
    parts = [
        f"<p><b>{html.escape(str(summary.get('message', '')))}</b></p>",
        f"<p>Chosen variants passing the gates: {summary.get('chosen_passed')} of {n_chosen}.</p>",
        "<h2>Grade distribution (all evaluated variants)</h2>",
        table(grades, ["grade", "variants"]),
        "<h2>Chosen variants after costs: returns and drawdowns</h2>",
        table(
            chosen_metrics,
            [
                "symbol",
                "window",
                "side",
                "target",
                "grade",
                "gate_passed",
                "n_trades",
                "net_total_return",
                "max_drawdown",
                "sharpe",
                "vin",
            ],
        ),
        "<h2>Equity curves after costs (test segment), with drawdown</h2>",
    ]
    parts += [f"<h3>{html.escape(name)}</h3>" + image(png, name) for name, png in sorted(equity_png.items())]
    return page("Evaluation after costs", parts)


def champions_section(roster: Any) -> str:
    rows = roster.get("champions", []) if isinstance(roster, Mapping) else list(roster or [])
    if not rows:
        return page("Champions", ["<p>No champion in the registry.</p>"])
    cols = ["symbol", "side", "vin", "version", "grade", "window", "target", "model_type", "score", "since"]
    return page(
        "Champions",
        [f"<p>{len(rows)} champions (symbol, side) in the registry after this run.</p>", table(rows, cols)],
    )
