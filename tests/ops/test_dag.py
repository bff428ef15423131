"""DAG pictures: `snakemake --rulegraph` and `--dag <one target>` print valid dot. Rendered with graphviz's
`dot` when it is installed (apt-get install graphviz), else the dot text's structure is checked."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.ops.helpers import ROOT, run_snakemake

CONFIG = ["--config", "env=integration-test", "universe=tiny", "targets=small"]


def graph(tmp_path, *args: str, targets: tuple[str, ...] = ()) -> str:
    (tmp_path / "data").symlink_to(ROOT / "data")  # raw bars are found relative to the working directory
    # targets first: `--dag` takes an optional format and `--config` takes every word after it
    r = run_snakemake(
        [
            *targets,
            "-s",
            str(ROOT / "Snakefile"),
            "-d",
            str(tmp_path),
            "--workflow-profile",
            "none",
            *args,
            *CONFIG,
        ],
        cwd=tmp_path,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def check_dot(text: str) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """Nodes {id: label} and edges; asserts the digraph is well formed (balanced braces, edges between
    nodes)."""
    body = text[text.index("digraph") :]
    assert body.count("{") == body.count("}") and body.rstrip().endswith("}")
    nodes = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', body, flags=re.MULTILINE))
    edges = set(re.findall(r"^\s*(\d+) -> (\d+)", body, flags=re.MULTILINE))
    assert nodes and edges
    assert {n for e in edges for n in e} <= set(nodes)
    if shutil.which("dot"):
        svg = subprocess.run(
            ["dot", "-Tsvg"], input=body, capture_output=True, check=False, text=True, timeout=60
        )
        assert svg.returncode == 0 and "<svg" in svg.stdout, svg.stderr
    return nodes, edges


@pytest.mark.slow
def test_rulegraph_is_valid_dot_with_every_stage(tmp_path):
    nodes, _ = check_dot(graph(tmp_path, "--rulegraph"))
    labels = set(nodes.values())
    for rule in (
        "ingest_bars",
        "build_features",
        "build_swing_targets",
        "split_segments",
        "train_stage1",
        "pick_best_variant",
        "summarize_best_variants",
        "all",
    ):
        assert rule in labels, f"{rule} missing from the rule graph: {sorted(labels)}"


@pytest.mark.slow
def test_dag_of_one_symbol_summary_is_valid_dot(tmp_path):
    nodes, edges = check_dot(
        graph(tmp_path, "--dag", "dot", targets=("results/best_variant/BTCUSDT/summary.md",))
    )
    labels = " ".join(nodes.values())
    assert "summarize_symbol" in labels and "train_stage1" in labels
    assert "symbol: BTCUSDT" in labels
    assert len(edges) >= len(nodes) - 1  # connected towards the one target
