"""Bad input, end to end: each case goes through the real workflow (`snakemake` in a private copy) and must
stop with a non-zero exit, a message naming the file / row / key and the problem, and no partial output.

The raw-data cases share one Snakemake run (one symbol per case, `--keep-going`, each case's job log checked
on its own); configuration cases each get their own run because they stop Snakemake before any job starts.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.reliability.conftest import (
    RUN,
    output_text,
    replace_raw,
    sandbox,
    smk,
    tiny,
    tmp_leftovers,
    unreadable_outputs,
)
from tests.sandbox import ROOT

R = 25_000  # a bar inside the integration-test span (2025-06-01 on), so clipping cannot hide the bad row


def _btc() -> pd.DataFrame:
    return pd.read_parquet(ROOT / "data" / "raw" / "BTCUSDT_1h.parquet")


def _set(df: pd.DataFrame, row: int, col: str, value) -> pd.DataFrame:
    df = df.copy()
    if isinstance(value, str):
        df[col] = df[col].astype(object)
    df.loc[row, col] = value
    return df


def _csv_with(row: int, col: str, text: str) -> bytes:
    df = _btc()
    df["timestamp"] = df["timestamp"].map(lambda t: t.isoformat())
    df[col] = df[col].astype(object)
    df.loc[row, col] = text
    return df.to_csv(index=False).encode()


def _swap(df: pd.DataFrame, a: int, b: int) -> pd.DataFrame:
    df = df.copy()
    df.iloc[[a, b]] = df.iloc[[b, a]].to_numpy()
    return df


def _shift(df: pd.DataFrame, row: int, delta: pd.Timedelta) -> pd.DataFrame:
    df = df.copy()
    df.loc[row, "timestamp"] = df.loc[row, "timestamp"] + delta
    return df


# symbol -> (make raw file: returns (bytes, suffix) or (frame, suffix), [regexes the message must match])
RAW_CASES = {
    "EMPTYUSDT": (lambda: (b"", ".parquet"), [r"file is empty"]),
    "GARBLEDUSDT": (lambda: (b"PAR1" + bytes(range(256)) * 8, ".parquet"), [r"cannot be read as parquet"]),
    "WRONGCOLS": (
        lambda: (_btc().rename(columns={"close": "price"}), ".parquet"),
        [r"missing column\(s\) \['close'\]"],
    ),
    "BADTSUSDT": (
        lambda: (_csv_with(R, "timestamp", "2025-13-45 99:00"), ".csv"),
        [rf"row {R}: unparseable timestamp '2025-13-45 99:00'"],
    ),
    "DUPTSUSDT": (
        lambda: (_set(_btc(), R, "timestamp", _btc().loc[R - 1, "timestamp"]), ".parquet"),
        [rf"row {R}: duplicate timestamp"],
    ),
    "UNSORTED": (lambda: (_swap(_btc(), R, R + 1), ".parquet"), [rf"row {R + 1}: timestamps not sorted"]),
    "OFFGRID": (
        lambda: (_shift(_btc(), R, pd.Timedelta(minutes=30)), ".parquet"),
        [rf"row {R}: timestamp .* is not on the hourly grid"],
    ),
    "HIGHLOW": (
        lambda: (_set(_btc(), R, "high", _btc().loc[R, "low"] * 0.99), ".parquet"),
        [rf"row {R} \(.*\): high < low"],
    ),
    "NEGPRICE": (
        lambda: (_set(_btc(), R, "low", -1.0), ".parquet"),
        [rf"row {R} \(.*\): price is zero or negative"],
    ),
    "ZEROPRICE": (
        lambda: (_set(_btc(), R, "close", 0.0), ".parquet"),
        [rf"row {R} \(.*\): price is zero or negative"],
    ),
    "NANPRICE": (lambda: (_set(_btc(), R, "open", np.nan), ".parquet"), [rf"row {R} \(.*\): price is NaN"]),
    "NOTNUMBER": (
        lambda: (_csv_with(R, "close", "abc"), ".csv"),
        [rf"row {R}: column 'close' is not a number: 'abc'"],
    ),
    "NEGVOLUME": (
        lambda: (_set(_btc(), R, "volume", -5.0), ".parquet"),
        [rf"row {R} \(.*\): volume is NaN or negative"],
    ),
    # 300 bars < ingest.min_bars (1000): too little history for any window
    "SHORTUSDT": (
        lambda: (_btc().tail(300).reset_index(drop=True), ".parquet"),
        [r"SHORTUSDT has 300 bars in the span", r"at least 1000 are needed"],
    ),
}


@pytest.fixture(scope="module")
def bad_raw_run(tmp_path_factory):
    wd = sandbox(tmp_path_factory.mktemp("badraw") / "wf", symbols=())
    files = {}
    for sym, (make, _) in RAW_CASES.items():
        obj, suffix = make()
        if isinstance(obj, bytes):
            files[sym] = replace_raw(wd, sym, data=obj, suffix=suffix)
        else:
            files[sym] = replace_raw(wd, sym, obj, suffix=suffix)
    symbols = ",".join(RAW_CASES)
    targets = [f"results/ingest/{s}.parquet" for s in RAW_CASES]
    proc = smk(
        wd,
        *targets,
        "--keep-going",
        "--retries",
        "0",
        config=tiny(f"universe.symbols=[{symbols}]"),
        timeout=900,
    )
    return wd, proc, files


@pytest.mark.parametrize("symbol", list(RAW_CASES))
def test_bad_raw_file_stops_its_ingest_job_naming_file_row_and_problem(bad_raw_run, symbol):
    wd, proc, files = bad_raw_run
    assert proc.returncode != 0, "a run with bad raw data must exit non-zero"
    log = (wd / "logs" / "ingest" / f"{symbol}.log").read_text()
    message = [line for line in log.splitlines() if line.startswith("swingflow error: ")]
    assert message, f"no one-line error in the job log:\n{log[-2000:]}"
    line = message[-1]
    assert f"data/raw/{files[symbol].name}" in line, f"message does not name the file: {line}"
    for pattern in RAW_CASES[symbol][1]:
        assert re.search(pattern, line), f"message lacks {pattern!r}: {line}"
    assert "Traceback" not in log, "a known input error must not end in a traceback"
    # Snakemake shows the failed job's log on its own output (profile: show-failed-logs).
    assert line in output_text(proc)
    # No partial output: neither the bars nor the quality report, nor a temporary.
    assert not (wd / "results" / "ingest" / f"{symbol}.parquet").exists()
    assert not (wd / "results" / "ingest" / f"{symbol}.quality.json").exists()
    assert not [p for p in tmp_leftovers(wd) if symbol in p]
    assert unreadable_outputs(wd) == []


def _assert_startup_refusal(wd: Path, proc, *patterns: str) -> None:
    text = output_text(proc)
    assert proc.returncode != 0, text[-3000:]
    for pattern in patterns:
        assert re.search(pattern, text), f"{pattern!r} not in Snakemake's output:\n{text[-3000:]}"
    # Stopped before any job: nothing under results/ at all.
    assert not (wd / "results").exists() or not any((wd / "results").rglob("*"))


@pytest.fixture
def wf(tmp_path) -> Path:
    return sandbox(tmp_path / "wf")


# id -> (config, [regexes Snakemake's output must match])
CONFIG_CASES = {
    "symbol-path-trick": (
        tiny("universe.symbols=[../x]"),
        [r"config key 'universe\.symbols\[0\]'", r"upper-case letters/digits", r"'\.\./x'"],
    ),
    "symbol-lower-case": (
        tiny("universe.symbols=[btcusdt,ETHUSDT]"),
        [r"config key 'universe\.symbols\[0\]'", r"'btcusdt'"],
    ),
    "unknown-config-key": (
        tiny() + ["foo=1"],
        [r"unknown --config key\(s\) \['foo'\]", r"allowed: env, universe"],
    ),
    "unknown-override-key": (tiny("stage1.bogus_rounds=5"), [r"bogus_rounds"]),
    "wrong-type-float": (tiny("split.train_frac=abc"), [r"split\.train_frac", r"abc"]),
    "wrong-type-list-item": (tiny("targets.windows=[five]"), [r"targets\.windows", r"five"]),
    "value-out-of-range": (
        tiny("split.train_frac=1.5"),
        [r"config key 'split\.train_frac'", r"\(0, 1\)", r"1\.5"],
    ),
    "costs-missing-for-a-symbol": (
        tiny(
            "costs.default=null",
            "~costs.symbols",
            "+costs.symbols={BTCUSDT:{taker_fee_bps:10.0,maker_fee_bps:2.0,half_spread_bps:0.5}}",
        ),
        [r"no costs for symbol 'ETHUSDT'", r"no 'default'"],
    ),
    "costs-missing-keys-for-a-symbol": (
        tiny("costs.default=null"),
        [r"costs for BTCUSDT: missing key\(s\) \['taker_fee_bps', 'maker_fee_bps'\]"],
    ),
    "raw-file-missing": (
        tiny("universe.symbols=[BTCUSDT,NORAWUSDT]"),
        [r"no raw bars for NORAWUSDT in data/raw", r"NORAWUSDT_1h\.parquet"],
    ),
}


@pytest.fixture(scope="module")
def config_runs(tmp_path_factory) -> dict:
    """Every configuration case in its own sandbox, run concurrently: each is one Snakemake start-up (mostly
    waiting on imports and config composition), so a few at a time finish sooner on two cores than one by
    one."""
    from concurrent.futures import ThreadPoolExecutor

    folders = {case: sandbox(tmp_path_factory.mktemp(case) / "wf") for case in CONFIG_CASES}

    def run(case: str):
        return folders[case], smk(folders[case], "--retries", "0", config=CONFIG_CASES[case][0], timeout=300)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(CONFIG_CASES, pool.map(run, CONFIG_CASES)))


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_is_refused_at_startup_naming_the_key(config_runs, case):
    wd, proc = config_runs[case]
    _assert_startup_refusal(wd, proc, *CONFIG_CASES[case][1])


def test_target_grid_without_events_stops_targets_job_naming_file_window_and_key(wf):
    target = "results/targets/BTCUSDT/w5.parquet"
    proc = smk(wf, target, "--retries", "0", config=tiny("targets.std_thresholds=[50.0]"), timeout=600)
    text = output_text(proc)
    assert proc.returncode != 0, text[-3000:]
    log = (wf / "logs" / "targets" / "BTCUSDT" / "w5.log").read_text()
    line = [x for x in log.splitlines() if x.startswith("swingflow error: ")][-1]
    assert "results/ingest/BTCUSDT.parquet" in line and "window 5" in line
    assert "produce no events" in line and "targets.std_thresholds=[50.0]" in line
    assert line in text
    assert not (wf / target).exists()
    assert not (wf / "results" / "targets" / "BTCUSDT" / "w5.summary.json").exists()
    assert tmp_leftovers(wf) == [] and unreadable_outputs(wf) == []


@pytest.mark.slow
def test_corrupted_stage1_model_stops_its_evaluation_naming_the_file(clean_run, tmp_path):
    """A stage-1 model.txt changed after training (one digit of a leaf value: still a valid LightGBM model, so
    only its recorded sha256 can tell) stops the evaluation job that would use it, and nothing is
    evaluated."""
    import json
    import shutil

    wd = tmp_path / "wf"
    shutil.copytree(clean_run, wd, symlinks=True)
    folder = wd / "results" / "stage1" / "BTCUSDT" / "w5"
    target = next(
        p.parent.name
        for p in sorted(folder.glob("*/metrics.json"))
        if json.loads(p.read_text())["status"] == "trained"
    )
    model = folder / target / "model.txt"
    data = bytearray(model.read_bytes())
    j = data.index(b"leaf_value=", data.index(b"Tree=0")) + len(b"leaf_value=") + 1
    data[j] = ord("7") if data[j] != ord("7") else ord("3")
    model.write_bytes(bytes(data))
    out = "results/evaluation/stage1/BTCUSDT/w5"
    proc = smk(wd, out, "--forcerun", "evaluate_stage1", "--retries", "0", config=RUN, timeout=600)
    text = output_text(proc)
    assert proc.returncode != 0, text[-3000:]
    log = (wd / "logs" / "evaluation" / "stage1" / "BTCUSDT" / "w5.log").read_text()
    line = [x for x in log.splitlines() if x.startswith("swingflow error: ")][-1]
    assert f"results/stage1/BTCUSDT/w5/{target}/model.txt: sha256 mismatch" in line, line
    assert f"results/stage1/BTCUSDT/w5/{target}/metrics.json records" in line and "Traceback" not in log
    assert line in text
    assert not (wd / out).exists() and not [p for p in tmp_leftovers(wd) if "evaluation" in p]
