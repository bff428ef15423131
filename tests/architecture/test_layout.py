"""The house's shape: imports go down the stage layers and never in a circle, and each rule file has its
sub-package whose jobs.py holds exactly one entry per rule."""

from __future__ import annotations

import re

from tests.architecture.imports import HEAVY_MARK, LAYERS, PACKAGE, cycles, imports, layer_of, modules

ROOT = PACKAGE.parent


def test_every_module_sits_in_a_layer():
    assert [m for m in modules() if m != "workflow_scripts" and layer_of(m) < 0] == []


def test_no_import_cycles():
    assert cycles(imports()) == []


def test_imports_only_go_down_the_layers():
    upward = [
        f"{e.source} -> {e.target} (line {e.line})"
        for e in imports()
        if layer_of(e.target) > layer_of(e.source)
    ]
    assert upward == [], f"layers, bottom to top: {LAYERS}"


def test_jobs_modules_do_not_import_each_other():
    assert [
        f"{e.source} -> {e.target}"
        for e in imports()
        if e.source.endswith(".jobs") and e.target.endswith(".jobs")
    ] == []


def test_function_level_project_imports_only_for_heavy_dependencies():
    hidden = [
        f"{e.source}:{e.line}: {e.text.strip()}"
        for e in imports()
        if e.in_function and HEAVY_MARK not in e.text
    ]
    assert hidden == [], (
        f"move these imports to the top of the module, or mark a heavy optional one '{HEAVY_MARK}'"
    )


def test_the_checker_sees_cycles_upward_and_hidden_imports(tmp_path, monkeypatch):
    """The checks above can fail: a planted cycle, an upward import and a function-level import are
    reported."""
    from tests.architecture import imports as imp

    pkg = tmp_path / "workflow_scripts"
    (pkg / "data").mkdir(parents=True)
    (pkg / "models").mkdir()
    for d in (pkg, pkg / "data", pkg / "models"):
        (d / "__init__.py").write_text("")
    (pkg / "data" / "a.py").write_text("from workflow_scripts.models import b\n")
    (pkg / "models" / "b.py").write_text("def f():\n    from workflow_scripts.data import a\n")
    monkeypatch.setattr(imp, "PACKAGE", pkg)
    edges = imp.imports()
    assert [c[:2] for c in imp.cycles(edges)] == [["workflow_scripts.data.a", "workflow_scripts.models.b"]]
    assert [(e.source, e.in_function) for e in edges if imp.layer_of(e.target) > imp.layer_of(e.source)] == [
        ("workflow_scripts.data.a", False)
    ]
    assert [e.source for e in edges if e.in_function] == ["workflow_scripts.models.b"]


def rules_of(smk: str) -> list[str]:
    return re.findall(r"^rule (\w+):", (ROOT / "rules" / smk).read_text(), flags=re.M)


def test_each_rule_file_has_its_sub_package_and_one_entry_per_rule():
    import importlib
    import inspect

    for smk in sorted(p.name for p in (ROOT / "rules").glob("*.smk")):
        stage = smk.removesuffix(".smk")
        if stage == "common":
            continue
        text = (ROOT / "rules" / smk).read_text()
        assert (PACKAGE / stage / "__init__.py").exists(), f"rules/{smk} has no workflow_scripts/{stage}/"
        jobs = importlib.import_module(f"workflow_scripts.{stage}.jobs")
        entries = {
            n
            for n, f in inspect.getmembers(jobs, inspect.isfunction)
            if f.__module__ == jobs.__name__ and not n.startswith("_")
        }
        assert entries == set(rules_of(smk)), f"workflow_scripts/{stage}/jobs.py vs rules/{smk}"
        # every rule of the file hands its files to its own stage's jobs module
        for rule, entry in re.findall(r'^rule (\w+):.*?\*\*job\(\s*"([\w.]+)"', text, flags=re.M | re.S):
            assert entry == f"{stage}.{rule}", f"rules/{smk}: rule {rule} calls {entry}"
        assert len(re.findall(r"\*\*job\(", text)) == len(rules_of(smk)), (
            f"rules/{smk}: every rule uses **job(...)"
        )


def test_no_rule_spells_a_path_in_its_shell_line():
    for smk in (ROOT / "rules").glob("*.smk"):
        shells = re.findall(r"^    shell:\n((?:        .*\n)+)", smk.read_text(), flags=re.M)
        assert all(s.strip() == "JOB" for s in shells), f"{smk.name}: a rule's shell line is JOB"
