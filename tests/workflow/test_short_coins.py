"""A coin with too few bars for ingest, or for one window, is left out of the plan with its reason, and the
rest of the universe plans as before (rules/common.smk plan_universe; issue 16: late listings in a wide
universe never crash a run)."""

import json

import pandas as pd

from tests.reliability.conftest import jobs_of_dry_run
from tests.sandbox import copy_workflow
from tests.workflow.conftest import snakemake

SYMBOLS = ("BTCUSDT", "ETHUSDT", "XRPUSDT", "DOGEUSDT")
CONFIG = [
    "env=integration-test",
    "targets=small",
    'overrides=["universe.symbols=[BTCUSDT,ETHUSDT,XRPUSDT,DOGEUSDT]","targets.windows=[5,200]"]',
]


def keep_last(path, n):
    bars = pd.read_parquet(path)
    bars.iloc[-n:].to_parquet(path)


def test_short_coins_and_windows_are_planned_out_with_their_reason(tmp_path):
    wd = copy_workflow(tmp_path / "wf", symbols=SYMBOLS)
    keep_last(wd / "data/raw/XRPUSDT_1h.parquet", 1100)  # enough for ingest (1000), not for window 200 (1123)
    keep_last(wd / "data/raw/DOGEUSDT_1h.parquet", 500)  # below ingest.min_bars

    proc = snakemake(wd, "-n", config=CONFIG)
    log = proc.stdout + proc.stderr
    assert (
        "swingflow: skipping XRPUSDT window 200: 1100 bars in the span [2025-06-01, last bar); window 200 "
        "needs at least 1123 (a complete label in each of train, validation and test)" in log
    )
    assert (
        "swingflow: skipping DOGEUSDT: 500 bars in the span [2025-06-01, last bar); ingest.min_bars is 1000"
        in log
    )
    outputs = [o for _, outs in jobs_of_dry_run(log) for o in outs]
    assert not [o for o in outputs if "DOGEUSDT" in o]
    xrp = [o for o in outputs if "XRPUSDT" in o]
    assert any("/w5" in o for o in xrp) and not [o for o in xrp if "/w200" in o]
    for s in ("BTCUSDT", "ETHUSDT"):  # the long coins keep both windows
        assert f"results/stage1/{s}/w200" in outputs and f"results/stage1/{s}/w5" in outputs

    snakemake(wd, "results/config/universe.json", config=CONFIG)
    universe = json.loads((wd / "results/config/universe.json").read_text())
    assert universe["symbols"] == ["BTCUSDT", "ETHUSDT", "XRPUSDT"]
    assert universe["windows"] == {"BTCUSDT": [5, 200], "ETHUSDT": [5, 200], "XRPUSDT": [5]}
    assert [(s["symbol"], s["window"], s["bars"]) for s in universe["skipped"]] == [
        ("XRPUSDT", 200, 1100),
        ("DOGEUSDT", None, 500),
    ]
