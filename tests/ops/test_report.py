"""`snakemake --report`: the sections rules/report.smk renders (data quality, selected features and
importances, tuning history, evaluation after costs, champions), built from the whole tiny run."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.ops.conftest import TINY_RUN
from tests.ops.helpers import run_snakemake
from workflow_scripts.report import sections as rs


def test_best_so_far_follows_the_finished_trials_in_order():
    trials = [
        {"number": 2, "state": "COMPLETE", "value": 0.5},
        {"number": 0, "state": "COMPLETE", "value": 0.3},
        {"number": 1, "state": "PRUNED", "value": None},
        {"number": 3, "state": "COMPLETE", "value": 0.4},
    ]
    assert rs.best_so_far(trials) == [0.3, 0.5, 0.5]
    assert rs.best_so_far(trials, maximize=False) == [0.3, 0.3, 0.3]


def test_tables_escape_what_they_show():
    html = rs.table([{"a": "<b>", "b": float("nan"), "c": [1, 2]}], ["a", "b", "c"])
    assert "&lt;b&gt;" in html and "<td>n/a</td>" in html and "<td>1, 2</td>" in html


@pytest.mark.slow
def test_the_report_builds_with_every_section(tiny_run):
    wf = tiny_run.workdir
    r = run_snakemake(["--report", "report.html", "--config", *TINY_RUN], cwd=wf, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    report = (wf / "report.html").read_text()
    for category in (
        "1. Data quality per coin",
        "2. Selected features and importances",
        "3. Tuning history",
        "4. Evaluation after costs",
        "5. Champions",
    ):
        assert category in report, category
    # the section files are embedded in the report as data URIs
    # (data:text/html;charset=utf8;filename=...;base64,)
    embedded = [
        base64.b64decode(m).decode(errors="replace")
        for m in re.findall(r"data:text/html;[^,\"]*base64,([A-Za-z0-9+/=]+)", report)
    ]
    for title in (
        "Data quality per coin",
        "Selected features and importances",
        "Tuning history",
        "Evaluation after costs",
        "Champions",
    ):
        assert any(f"<h1>{title}</h1>" in e for e in embedded), (
            f"section {title!r} not embedded in the report"
        )

    sections = {name: (wf / "results" / "report" / f"{name}.html").read_text() for name in rs.SECTIONS}
    quality = json.loads((wf / "results/ingest/BTCUSDT.quality.json").read_text())
    assert f"<td>BTCUSDT</td><td>{quality['first']}</td>" in sections["quality"]
    selected = json.loads((wf / "results/selection/ETHUSDT/selected.json").read_text())
    assert f"{selected['n_selected']} of {selected['n_candidates']} candidate" in sections["selection"]
    assert (
        selected["features"][0] in sections["selection"] and "data:image/png;base64," in sections["selection"]
    )
    assert "stage2 w5" in sections["tuning"] and "stage4 BTCUSDT w20 low" in sections["tuning"]
    assert sections["tuning"].count("data:image/png;base64,") == 3  # one history plot per stage
    summary = json.loads((wf / "results/evaluation/summary.json").read_text())
    for grade, n in summary["grade_counts"].items():
        assert f"<td>{grade}</td><td>{n}</td>" in sections["evaluation"]
    assert "max_drawdown" in sections["evaluation"] and sections["evaluation"].count("data:image/png") == 8
    roster = json.loads((wf / "results/registry/roster.json").read_text())
    champions = roster.get("champions", roster) if isinstance(roster, dict) else roster
    assert all(c["vin"] in sections["champions"] for c in champions)
