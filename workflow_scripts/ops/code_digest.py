"""The code a rule runs, as one digest: rules carry it as a param, so editing that code replans the rule.

Snakemake reruns a `shell:` rule when its params change, not when the Python modules its command imports
change. `rule_code_digest("<stage>.<function>")` hashes exactly the code the job runs:

- the function's own source in `workflow_scripts/<stage>/jobs.py`, the jobs module's top-level statements
  (imports, constants) and the local helpers it calls;
- every project module it references, with their project imports, transitively (function-level imports
  included: a `# heavy: torch` import is code the job runs too);
- the job runner `workflow_scripts/job.py` and the package `__init__` files on the way.

Hashing is of the file bytes, so a comment or a docstring edit replans too: never less than needed, sometimes
a little more (docs/ARCHITECTURE.md, "Reruns"). Modules outside the package (libraries) are pinned by the
environment, not here.
"""

from __future__ import annotations

import ast
import hashlib
import re
from functools import cache
from pathlib import Path

PACKAGE = "workflow_scripts"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
RUNNER = f"{PACKAGE}.job"


def module_file(module: str) -> Path | None:
    """The source file of a project module (package `__init__.py` or module `.py`), None if there is none."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _package_of(module: str) -> str:
    path = module_file(module)
    return module if path is not None and path.name == "__init__.py" else module.rsplit(".", 1)[0]


def _import_targets(node: ast.AST, module: str) -> dict[str, str]:
    """{bound name: project module} for one import statement of `module` (absolute or relative)."""
    out = {}
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == PACKAGE:
                out[alias.asname or alias.name.split(".")[0]] = alias.name
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # from . import x / from ._core import y
            package = _package_of(module).split(".")
            anchor = ".".join(package[: len(package) - (node.level - 1)])
            base = f"{anchor}.{base}" if base else anchor
        if base.split(".")[0] != PACKAGE:
            return out
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            out[alias.asname or alias.name] = sub if module_file(sub) else base
    return out


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_bytes(), filename=str(path))


@cache
def module_imports(module: str) -> frozenset[str]:
    """Project modules imported anywhere in `module` (top level or inside functions), with their parents."""
    path = module_file(module)
    if path is None:
        return frozenset()
    found = set()
    for node in ast.walk(_tree(path)):
        for target in _import_targets(node, module).values():
            if module_file(target):
                found.add(target)
                found.update(p for p in _parents(target) if module_file(p))
    return frozenset(found)


def closure(modules: set[str]) -> set[str]:
    """`modules` and every project module they import, transitively."""
    seen, todo = set(), list(modules)
    while todo:
        module = todo.pop()
        if module in seen or module_file(module) is None:
            continue
        seen.add(module)
        todo.extend(module_imports(module) - seen)
        todo.extend(p for p in _parents(module) if p not in seen)
    return seen


def _names_used(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


# Lines as ast.get_source_segment splits them (on \r\n, \r or \n only), each with its line end.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def source_segment(lines: list[str], node: ast.AST) -> str:
    """ast.get_source_segment(source, node) on the source split once: the stdlib splits the whole file again
    on every call, which made planning a workflow spend seconds here (41 rule entries, 600 segments)."""
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        return lines[first].encode()[node.col_offset : node.end_col_offset].decode()
    head = lines[first].encode()[node.col_offset :].decode()
    tail = lines[last].encode()[: node.end_col_offset].decode()
    return "".join([head, *lines[first + 1 : last], tail])


def entry_code(entry: str) -> tuple[list[str], set[str]]:
    """(source segments of the jobs.py code of "<stage>.<function>", project modules it references)."""
    stage, function = entry.split(".")
    jobs_module = f"{PACKAGE}.{stage}.jobs"
    path = module_file(jobs_module)
    if path is None:
        raise ValueError(f"rule entry {entry!r}: no module {jobs_module}")
    source = path.read_text(encoding="utf-8")
    tree = _tree(path)
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if function not in functions:
        raise ValueError(f"rule entry {entry!r}: {path} has no function {function!r}")
    top = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    bound = {}
    for node in top:
        bound.update(_import_targets(node, jobs_module))
    used, todo, reached = set(), [function], set()
    while todo:  # the entry and the local helpers it calls
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        names = _names_used(functions[name])
        used |= names
        todo.extend(n for n in names if n in functions and n not in reached)
    # In file order: the digest must not depend on set order (string hashes differ between processes).
    lines = _LINE.findall(source)
    segments = [source_segment(lines, n) for n in top]
    segments += [source_segment(lines, f) for n, f in functions.items() if n in reached]
    modules = {bound[n] for n in used if n in bound} | {jobs_module}
    return segments, modules


@cache
def rule_code_digest(entry: str) -> str:
    """sha256 over the code the job of `entry` runs (module docstring)."""
    segments, modules = entry_code(entry)
    digest = hashlib.sha256()
    for segment in segments:
        digest.update(segment.encode("utf-8") + b"\0")
    jobs_module = f"{PACKAGE}.{entry.split('.')[0]}.jobs"
    reached = closure((modules - {jobs_module}) | {RUNNER}) | set(_parents(jobs_module))
    for module in sorted(reached):
        digest.update(module.encode() + b"\0" + module_file(module).read_bytes() + b"\0")
    return digest.hexdigest()
