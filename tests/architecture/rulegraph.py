"""The rule graph as Snakemake plans it, and as docs/ARCHITECTURE.md draws it (a mermaid flowchart)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Every optional rule switched on: shared encoder, ensembles, MLflow tracking (central-dev's env), agents.
ALL_ON = ["--config", "env=central-dev", "encoder=pca", "ensemble=enabled", "agents=ppo"]


def rulegraph_edges(config: list[str] = ALL_ON) -> set[tuple[str, str]]:
    dot = subprocess.run(
        [sys.executable, "-m", "snakemake", "--rulegraph", *config],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    labels = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)"', dot, flags=re.M))
    return {(labels[a], labels[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)$", dot, flags=re.M)}


def rule_files() -> dict[str, str]:
    """rule -> the rule file (stage) that declares it."""
    out = {}
    included = re.findall(r'^include: "rules/(\w+)\.smk"', (ROOT / "Snakefile").read_text(), flags=re.M)
    for smk in [ROOT / "rules" / f"{name}.smk" for name in included]:
        for rule in re.findall(r"^rule (\w+):", smk.read_text(), flags=re.M):
            out[rule] = smk.stem
    out["all"] = "Snakefile"
    return out


def doc_edges(text: str) -> set[tuple[str, str]]:
    mermaid = text.split("```mermaid", 1)[1].split("```", 1)[0]
    edges = set()
    for line in mermaid.splitlines():
        chain = re.findall(r"\w+", line.split("%%")[0]) if "-->" in line else []
        edges |= set(zip(chain, chain[1:]))
    return edges


def mermaid(edges: set[tuple[str, str]]) -> str:
    """The flowchart docs/ARCHITECTURE.md holds: one subgraph per rule file, one edge per line."""
    files = rule_files()
    lines = ["flowchart TD"]
    for stage in sorted(set(files.values()) - {"Snakefile"}, key=list(files.values()).index):
        lines.append(f'    subgraph {stage}["rules/{stage}.smk"]')
        lines += [f"        {r}" for r, s in files.items() if s == stage]
        lines.append("    end")
    lines += [f"    {a} --> {b}" for a, b in sorted(edges, key=lambda e: (list(files).index(e[0]), e[1]))]
    return "\n".join(lines)


if __name__ == "__main__":
    print(mermaid(rulegraph_edges()))
