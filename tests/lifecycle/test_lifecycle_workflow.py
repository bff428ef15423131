"""Refit and paper trading in a real tiny workflow run (sandbox copy): the production folders hold refit
models whose last training bar is within one label horizon of the data end; the rule paper_trade runs in
`all`; a deployed champion is paper-traded with `swingflow paper` on bars appended after the data end, and a
second call leaves its ledger byte-identical."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.registry.test_registry_workflow import OVERRIDES, TINY
from tests.sandbox import copy_workflow
from tests.workflow.conftest import snakemake
from workflow_scripts import artifacts
from workflow_scripts.lifecycle import paper
from workflow_scripts.registry import store as reg

pytestmark = pytest.mark.slow

SYMBOLS = ("BTCUSDT", "ETHUSDT")
END = "2026-04-15"  # the workflow's data end; the raw bars after it are the "live" ones
CONFIG = [
    *TINY[:-1],
    "gates=exploratory",
    "overrides=[" + ",".join(f'"{o}"' for o in (*OVERRIDES, f"env.data.end={END}")) + "]",
]
TARGETS = ["results/registry/run_status.json", *(f"results/lifecycle/paper/{s}.json" for s in SYMBOLS)]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("lifecycle_wf") / "wf")
    snakemake(workdir, *TARGETS, config=CONFIG, timeout=1800)
    return workdir


def test_production_folders_hold_refits_through_the_data_end(ran):
    folders = sorted((ran / "results" / "production").glob("*/w*/*"))
    assert folders
    for folder in folders:
        bars = len(pd.read_parquet(ran / "results" / "ingest" / f"{folder.parts[-3]}.parquet"))
        doc = artifacts.read_json(folder / "refit" / "refit.json")
        metrics = artifacts.read_json(folder / "metrics.json")
        horizon = metrics["replay"]["horizon"]
        assert (bars - 1) - doc["span"]["last_pos"] <= horizon, folder
        assert metrics["vin"].split("-")[-2] == pd.Timestamp(doc["span"]["last_bar"]).strftime("%Y%m%d")
    for s in SYMBOLS:
        assert artifacts.read_json(ran / "results" / "lifecycle" / "paper" / f"{s}.json")["slots"] == []


def test_paper_on_appended_bars_is_idempotent(ran, tmp_path):
    registry = ran / "registry" / "integration-test"
    roster = reg.roster(registry)
    assert roster, "no champion in the tiny run"
    champion = roster[0]
    reg.deploy(registry, 0, champion["vin"])
    live = tmp_path / "live"
    live.mkdir()
    for s in SYMBOLS:
        ingest = pd.read_parquet(ran / "results" / "ingest" / f"{s}.parquet")
        raw = pd.read_parquet(ROOT / "data" / "raw" / f"{s}_1h.parquet")
        new = raw[raw["timestamp"] > ingest["timestamp"].iloc[-1]][ingest.columns].astype(
            ingest.dtypes.to_dict()
        )
        pd.concat([ingest, new.iloc[:500]], ignore_index=True).to_parquet(live / f"{s}.parquet")
    exe = Path(sys.executable).with_name("swingflow")

    def run():
        out = subprocess.run(
            [str(exe), "--registry", str(registry), "--json", "paper", "--bars", str(live)],
            capture_output=True,
            text=True,
            cwd=ran,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["changes"] == []  # 500 paper bars: short of the demotion minimum (720)
        return doc["slots"]

    [first] = run()
    assert first["paper_bars"] > 0 and first["model"] == "refit"
    ledger = paper.ledger_path(registry / "paper", 0, champion["vin"])
    before = {p.name: p.read_bytes() for p in ledger.iterdir() if p.is_file()}
    [again] = run()
    assert again["appended_bars"] == 0
    assert {p.name: p.read_bytes() for p in ledger.iterdir() if p.is_file()} == before
