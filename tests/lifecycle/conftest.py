"""Fixtures of the lifecycle tests: the small real registry of tests/registry (LightGBM production folders on
real BTCUSDT bars) for tests that need registered models but no workflow run, and the reliability proofs'
tiny workflow run for the perturbation proof."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.registry.conftest import OTHER, ROWS, Factory


@pytest.fixture(scope="module")
def factory(btc_bars, tmp_path_factory) -> Factory:
    bars = btc_bars.iloc[-ROWS:].reset_index(drop=True)
    other = pd.read_parquet(ROOT / "data" / "raw" / f"{OTHER}_1h.parquet")
    other = other[other["timestamp"].between(bars["timestamp"].iloc[0], bars["timestamp"].iloc[-1])]
    return Factory(bars, tmp_path_factory.mktemp("production"), other.reset_index(drop=True))


# ---- the tiny workflow run of the reliability proofs, shared -----------------------------------------------
# tests/reliability/conftest.py's clean_run reuses the finished run this variable names
REUSE = "SWINGFLOW_RELIABILITY_CLEAN_RUN"


def _finished(workdir: Path) -> bool:
    return (workdir / "results" / "best_variant" / "summary.md").is_file()


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory) -> Path:
    """tests/reliability/conftest.py's `clean_run` (the complete tiny run, config RUN), computed once per
    session whichever directory asks first: a run named by $SWINGFLOW_RELIABILITY_CLEAN_RUN, else the one
    the reliability proofs finished earlier in this session (their sandbox under the session's base temp),
    else a new one made exactly as theirs, whose folder is then put in $SWINGFLOW_RELIABILITY_CLEAN_RUN so
    their fixture reuses it (CI budget: one tiny run for all the slow proofs)."""
    from tests.reliability.conftest import RUN, output_text, sandbox, smk

    if os.environ.get(REUSE):
        wd = Path(os.environ[REUSE])
        assert _finished(wd), f"{wd}: not a finished tiny run"
        return wd
    earlier = sorted(p for p in tmp_path_factory.getbasetemp().glob("clean*/wf") if _finished(p))
    if earlier:
        return earlier[0]
    wd = sandbox(tmp_path_factory.mktemp("clean") / "wf")
    proc = smk(wd, config=RUN, timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"clean tiny run failed ({proc.returncode}):\n{output_text(proc)[-6000:]}")
    os.environ[REUSE] = str(wd)
    return wd
