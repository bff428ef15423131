"""The import graph of workflow_scripts/, read from the source with `ast` (module-level and
function-level)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "workflow_scripts"

# Bottom to top: a module may import only from its own layer or the layers below it.
LAYERS = (
    "artifacts",
    "data",
    "features",
    "targets",
    "selection",
    "evaluation",
    "models",
    "training",
    "agents",
    "lifecycle",
    "registry",
    "report",
    "config",
    "ops",
    "job",
    "jobs",
)
# A function-level import of a project module is allowed only for a heavy optional dependency, marked so.
HEAVY_MARK = "# heavy: torch"


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted
    target: str  # imported project module, dotted
    line: int
    in_function: bool
    text: str


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, known: set[str]) -> str | None:
    """The project module a dotted import name refers to (`a.b.func` -> `a.b`)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports() -> list[Import]:
    known = set(modules())
    found = []
    for mod, path in modules().items():
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source)
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        function_nodes = {
            id(n)
            for f in ast.walk(tree)
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            for n in ast.walk(f)
        }
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - node.level + 1]
                        + ([base] if base else [])
                    )
                names = [f"{base}.{a.name}" for a in node.names]
            for name in names:
                target = _resolve(name, known)
                if target and target != mod and name.startswith("workflow_scripts"):
                    found.append(
                        Import(mod, target, node.lineno, id(node) in function_nodes, lines[node.lineno - 1])
                    )
    return found


def layer_of(mod: str) -> int:
    parts = mod.split(".")
    if parts[-1] == "jobs":
        return LAYERS.index("jobs")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


def cycles(edges: list[Import]) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found
