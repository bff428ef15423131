"""docs/ARCHITECTURE.md stays true: its rule graph names exactly the workflow's rules; the rule graph is valid
dot."""

import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def workflow_rules() -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--list-rules"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.strip() for line in out.splitlines() if re.fullmatch(r"\s*\w+\s*", line)}


def test_architecture_doc_names_every_rule():
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    mermaid = doc.split("```mermaid", 1)[1].split("```", 1)[0]
    mermaid = "\n".join(
        line for line in mermaid.splitlines() if not line.strip().startswith(("%%", "subgraph", "end"))
    )  # comments, rule-file boxes
    in_doc = set(re.findall(r"\b([a-z][a-z0-9_]+)\b", mermaid)) - {"flowchart", "td"}
    assert in_doc == workflow_rules()


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed")
def test_rulegraph_and_one_coin_dag_render_as_svg():
    for extra in ([], ["results/best_variant/BTCUSDT/summary.md"]):
        flag = ["--rulegraph"] if not extra else ["--dag", "dot"]
        dot = subprocess.run(
            [sys.executable, "-m", "snakemake", *flag, *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True).stdout
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        if extra:  # one coin's DAG: its own training jobs only (other coins appear only as cross-coin inputs)
            assert dot.count('label = "train_stage1') == 6  # one coin x 6 windows, not 3 coins x 6
