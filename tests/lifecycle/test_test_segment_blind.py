"""Proof by perturbation (issue 14 item 2, docs/LIFECYCLE.md): the test segment decides nothing.

The tiny real run of the reliability proofs (tests/reliability/conftest.py `clean_run`, config RUN) is run a
second time in a sandbox whose raw bars from the earliest test-segment start on (per symbol: the earliest
`test.start` of its split files) are other real bars: the same coin's bars from another period (its first
bars, 2023, long before the run's span), rescaled to continue the price level, under the same timestamps, so
the splits do not move. Prices, labels and every test metric change; every decision must not:

- screened and selected features, best-variant choices (the decision file, not its report), tuned parameters
  (tuning stage results, timings aside), the evaluated production models, their thresholds and validation
  evidence (validation_returns.json), and the registry's decision record (results/registry/decisions.json:
  candidates by symbol/window/side/target/model kind and evaluated model sha256, no VIN);
- champions and the deploy slot when every candidate may compete (the gate lifted, the champion rule on
  validation evidence): the decision record of a scratch registry, and the model `swingflow deploy` picks.

The comparison is shown to catch a decision that reads the test segment: in copies of both runs the
best-variant choice is made to pick the variant with the best test average precision, only those jobs rerun,
and the decision files then differ.
"""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.reliability.conftest import (
    RUN,
    SYMBOLS,
    finished_jobs_of_log,
    hashes,
    output_text,
    replace_raw,
    sandbox,
    smk,
)
from workflow_scripts import artifacts
from workflow_scripts.config.schema import config_group
from workflow_scripts.registry import runs
from workflow_scripts.registry import store as reg

pytestmark = pytest.mark.slow

WINDOWS = (5, 20)
SIDES = ("high", "low")
PRICES = ("open", "high", "low", "close")
# Every decision of the workflow, as files (globs under the workdir). The ensemble is off in RUN.
DECISIONS = {
    "screened and selected features": [
        "results/screening/*/screening.json",
        "results/selection/*/selected.json",
        "results/selection/*/w*.parquet",
        "results/selection/overall.json",
    ],
    "best-variant choices": [f"results/best_variant/*/w*/{side}.json" for side in SIDES],
    "tuned parameters": ["results/tuning/stage*/*.json", "results/tuning/stage*/*/*/*.json"],
    "evaluated models, thresholds, validation evidence": [
        f"results/production/*/w*/*/{name}"
        for name in ("model.txt", "features.json", "validation_returns.json")
    ],
    "champion decisions": ["results/registry/decisions.json"],
}
# Reported test metrics: at least one must differ, or the perturbation did not reach the test segment.
REPORTS = ["results/production/*/w*/*/metrics.json", "results/best_variant/*/w*/*.report.json"]
TARGETS = ["results/registry/run_status.json", "results/selection/overall.json"]


def earliest_test_start(workdir: Path, symbol: str) -> pd.Timestamp:
    """The earliest test-segment start of a symbol over its windows' split files."""
    starts = [
        pd.Timestamp(
            artifacts.read_json(workdir / "results" / "splits" / symbol / f"w{w}.json")["test"]["start"]
        )
        for w in WINDOWS
    ]
    return min(starts)


def other_period(raw: pd.DataFrame, start: pd.Timestamp, run_start: pd.Timestamp) -> pd.DataFrame:
    """`raw` with every bar from `start` on replaced by the coin's first bars (same count), rescaled so the
    first replaced open continues the last kept close; timestamps unchanged."""
    out = raw.copy()
    after = (out["timestamp"] >= start).to_numpy()
    source = raw.iloc[: int(after.sum())]
    assert source["timestamp"].iloc[-1] < run_start, "the replacement bars overlap the run's span"
    scale = float(raw.loc[~after, "close"].iloc[-1]) / float(source["open"].iloc[0])
    for c in PRICES:
        out.loc[after, c] = source[c].to_numpy() * scale
    out.loc[after, "volume"] = source["volume"].to_numpy()
    return out


def files(workdir: Path, patterns) -> list[str]:
    return sorted({str(Path(p).relative_to(workdir)) for g in patterns for p in glob.glob(str(workdir / g))})


def digests(workdir: Path, patterns) -> dict[str, str]:
    """sha256 per file (JSON files with timing keys compare without them: tests/reliability hashes)."""
    every = hashes(workdir)
    return {f: every[f] for f in files(workdir, patterns)}


def differences(a: Path, b: Path, patterns) -> list[str]:
    da, db = digests(a, patterns), digests(b, patterns)
    return sorted(f for f in set(da) | set(db) if da.get(f) != db.get(f))


@pytest.fixture(scope="module")
def blind_run(clean_run, tmp_path_factory) -> Path:
    wd = sandbox(tmp_path_factory.mktemp("blind") / "wf")
    run_start = pd.Timestamp(config_group("env", "integration-test")["data"]["start"], tz="UTC")
    for symbol in SYMBOLS:
        raw = pd.read_parquet(wd / "data" / "raw" / f"{symbol}_1h.parquet")
        replace_raw(wd, symbol, other_period(raw, earliest_test_start(clean_run, symbol), run_start))
    proc = smk(wd, *TARGETS, config=RUN, timeout=1800)
    assert proc.returncode == 0, output_text(proc)[-4000:]
    return wd


def test_the_perturbation_changes_only_test_bars_and_reaches_the_test_metrics(clean_run, blind_run):
    for symbol in SYMBOLS:
        a = pd.read_parquet(clean_run / "results" / "ingest" / f"{symbol}.parquet")
        b = pd.read_parquet(blind_run / "results" / "ingest" / f"{symbol}.parquet")
        assert a["timestamp"].equals(b["timestamp"])
        before = (a["timestamp"] < earliest_test_start(clean_run, symbol)).to_numpy()
        pd.testing.assert_frame_equal(a[before], b[before], check_exact=True)
        assert (a.loc[~before, "close"] != b.loc[~before, "close"]).mean() > 0.99
        for w in WINDOWS:
            split = f"results/splits/{symbol}/w{w}.json"
            assert (clean_run / split).read_bytes() == (blind_run / split).read_bytes()
    changed = differences(clean_run, blind_run, REPORTS)
    assert changed, "no reported test metric changed: the perturbation did not reach the test segment"
    metrics = files(clean_run, ["results/production/*/w*/*/metrics.json"])
    sharpe = {
        f: [
            artifacts.read_json(wd / f)["evaluation"]["after_costs"]["sharpe"]
            for wd in (clean_run, blind_run)
        ]
        for f in metrics
    }
    assert any(x != y for x, y in sharpe.values()), sharpe


@pytest.mark.parametrize("decision", sorted(DECISIONS))
def test_every_decision_file_is_byte_identical(clean_run, blind_run, decision):
    patterns = DECISIONS[decision]
    found = files(clean_run, patterns)
    assert found, f"{decision}: no file matches {patterns}"
    assert differences(clean_run, blind_run, patterns) == [], f"{decision} changed with the test bars"


def scratch_registry(workdir: Path, root: Path) -> tuple[dict, dict]:
    """Register a run's production folders in a fresh registry with every gate verdict lifted (all compete;
    the champion rule on validation evidence is what is under test), deploy the best champion to slot 0.
    Returns (decision record, identity and model file of the deployed model)."""
    results = workdir / "results"
    folders = sorted(str(p) for p in results.glob("production/*/w*/*") if p.is_dir())
    data = runs.symbol_data_from_paths(
        [str(results / "features" / f"{s}.parquet") for s in SYMBOLS],
        [str(results / "targets" / s / f"w{w}.parquet") for s in SYMBOLS for w in WINDOWS],
        [str(results / "splits" / s / f"w{w}.json") for s in SYMBOLS for w in WINDOWS],
    )
    spec = config_group("registry")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reg, "eligibility", lambda entry: (True, "strict", "gate lifted by the test"))
        runs.register_run(root, folders, data, spec)
        record = runs.decision_record(root, folders, spec)
    info = reg.deploy(root, 0)
    return record, runs.identity(reg.get_entry(root, info["vin"])) | {"model_file": info["model_file"]}


def test_champions_and_the_deploy_slot_do_not_read_the_test_segment(clean_run, blind_run, tmp_path):
    record_a, deployed_a = scratch_registry(clean_run, tmp_path / "a")
    record_b, deployed_b = scratch_registry(blind_run, tmp_path / "b")
    champions = [c for c in record_a["champions"].values() if c]
    assert champions, "no candidate became champion: the comparison would be void"
    decided = [c["decision"]["decision"] for c in record_a["candidates"] if c["decision"]]
    assert "champion" in decided and len(decided) == len(record_a["candidates"])
    assert artifacts.to_json_text(record_a) == artifacts.to_json_text(record_b)
    assert deployed_a == deployed_b and deployed_a["model_file"].startswith("refit/")


# The fault planted to show the comparison catches a decision that reads the test segment: the best-variant
# choice takes the trained variant with the best TEST average precision (appended to the copies' module, so
# it does not depend on its insides beyond best_of's arguments and the choice's `best` / `variants_ranked`).
INJECTED = """

_honest_best_of = best_of


def best_of(symbol, window, side, metrics, *args, **kwargs):  # planted by test_test_segment_blind.py
    doc = _honest_best_of(symbol, window, side, metrics, *args, **kwargs)
    trained = [m for m in metrics if m["status"] == "trained"]
    test_ap = {m["target"]: m.get("test_average_precision") or -1.0 for m in trained}
    if test_ap:
        chosen = max(sorted(test_ap), key=test_ap.get)
        doc["best"] = next(r for r in doc["variants_ranked"] if r["target"] == chosen)
    return doc
"""


def test_a_decision_that_reads_the_test_segment_is_caught(clean_run, blind_run, tmp_path):
    choices = files(clean_run, DECISIONS["best-variant choices"])
    copies = {}
    for name, workdir in (("clean", clean_run), ("blind", blind_run)):
        copy = tmp_path / name
        shutil.copytree(workdir, copy, symlinks=True)
        module = copy / "workflow_scripts" / "evaluation" / "best_variant.py"
        assert "def best_of(" in module.read_text(), "the planted fault needs evaluation/best_variant.best_of"
        module.write_text(module.read_text() + INJECTED)
        # only the choices are made again (mtimes as copied: nothing upstream is replanned)
        proc = smk(copy, *choices, "--rerun-triggers", "mtime", "--forcerun", "pick_best_variant", config=RUN)
        assert proc.returncode == 0, output_text(proc)[-3000:]
        ran = finished_jobs_of_log(output_text(proc))
        assert ran == {"pick_best_variant": len(choices) // 2}, ran  # one job writes both sides' choices
        copies[name] = copy
    caught = differences(copies["clean"], copies["blind"], DECISIONS["best-variant choices"])
    assert caught, "a choice made on the test segment went unnoticed: the comparison is blind"
    # and the planted fault is the only difference: the honest choices of both runs agree
    assert differences(clean_run, blind_run, DECISIONS["best-variant choices"]) == []
