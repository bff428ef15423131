"""Code digests: an edit to the code a rule runs changes that rule's digest, and only the digests of the rules
whose code it is (workflow_scripts/ops/code_digest.py)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workflow_scripts.ops import code_digest

PACKAGE = Path(code_digest.__file__).resolve().parents[1]
ENTRIES = (
    "data.ingest_bars",
    "data.split_segments",
    "features.build_features",
    "features.add_cross_coin_features",
    "targets.build_swing_targets",
    "training.train_stage1",
    "training.fit_production",
    "training.evaluate_production",
    "registry.register_models",
    "report.render_report",  # calls several local helpers: their order once followed set order
)


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A private copy of the package that the digests read, so a test can edit it."""
    copy = tmp_path / "workflow_scripts"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code_digest, "PACKAGE_DIR", copy)
    yield copy
    _clear()


def _clear():
    for fn in (code_digest.rule_code_digest, code_digest.module_imports, code_digest._tree):
        fn.cache_clear()


def digests() -> dict[str, str]:
    _clear()
    return {e: code_digest.rule_code_digest(e) for e in ENTRIES}


def changed(before: dict, after: dict) -> set[str]:
    return {e for e in ENTRIES if before[e] != after[e]}


def test_closure_follows_relative_and_function_level_imports():
    _, modules = code_digest.entry_code("features.build_features")
    reached = code_digest.closure(modules)
    assert "workflow_scripts.features.technical" in reached  # `from . import technical` in features/__init__
    assert not any(m.startswith("workflow_scripts.training") for m in reached)
    _, modules = code_digest.entry_code("training.fit_production")
    assert "workflow_scripts.models.torch_models" in code_digest.closure(modules)  # via models.kinds


def test_a_feature_module_edit_changes_exactly_its_users(package_copy):
    before = digests()
    path = package_copy / "features" / "technical.py"
    path.write_text(path.read_text() + "\nEDITED = 1\n")
    after = digests()
    # build_features runs it; add_cross_coin_features imports the features package, whose __init__ imports
    # every family (more than needed, never less); the production jobs and register_models import the package
    # too (features for the encoder's rows, for predictions).
    assert changed(before, after) == {
        "features.build_features",
        "features.add_cross_coin_features",
        "training.fit_production",
        "training.evaluate_production",
        "registry.register_models",
    }


def test_an_edit_to_one_jobs_function_leaves_its_neighbours(package_copy):
    before = digests()
    path = package_copy / "data" / "jobs.py"
    text = path.read_text()
    assert "def ingest_bars(job)" in text
    path.write_text(
        text.replace("def ingest_bars(job) -> None:\n", "def ingest_bars(job) -> None:\n    # edit\n", 1)
    )
    after = digests()
    assert changed(before, after) == {"data.ingest_bars"}


def test_unknown_entries_are_named():
    with pytest.raises(ValueError, match=r"rule entry 'data.no_such_rule': .*jobs.py has no function"):
        code_digest.entry_code("data.no_such_rule")
    with pytest.raises(
        ValueError, match=r"rule entry 'nowhere.rule': no module workflow_scripts.nowhere.jobs"
    ):
        code_digest.entry_code("nowhere.rule")


def test_digests_are_the_same_in_every_process():
    """Snakemake compares a recorded digest with one computed by a later process: it must not depend on the
    process's string hash seed."""
    code = (
        "import json; from workflow_scripts.ops.code_digest import rule_code_digest as d; "
        f"print(json.dumps([d(e) for e in {list(ENTRIES)!r}]))"
    )
    seen = {
        json.dumps(
            json.loads(
                subprocess.run(
                    [sys.executable, "-c", code],
                    env=dict(os.environ, PYTHONHASHSEED=str(seed)),
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
        )
        for seed in range(8)
    }
    assert len(seen) == 1


def test_source_segments_are_the_stdlib_ones():
    """source_segment (lines split once) gives exactly ast.get_source_segment's text for every top-level
    statement and every function of every module of the package (what digests hash), so digests did not
    change when it replaced the stdlib call."""
    import ast
    from pathlib import Path

    from workflow_scripts.ops.code_digest import _LINE, source_segment

    files = sorted(Path(__file__).resolve().parents[2].joinpath("workflow_scripts").rglob("*.py"))
    compared = 0
    for path in files:
        source = path.read_text(encoding="utf-8")
        lines = _LINE.findall(source)
        assert "".join(lines) == source
        tree = ast.parse(source)
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for node in [*tree.body, *functions]:
            if True:
                assert source_segment(lines, node) == ast.get_source_segment(source, node), (
                    path,
                    node.lineno,
                )
                compared += 1
    assert compared > 1_000
