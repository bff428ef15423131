"""Data-quality checks at ingest (workflow_scripts/data/quality.py): faults planted in real bars are found
with the right bars, rows and rule; clean real bars are not flagged; `stop` fails the job naming file, rows
and rule and writes nothing; the report lists the findings; timezone-naive timestamps are read as UTC."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from tests.conftest import RAW
from tests.sandbox import copy_workflow, snakemake_cmd
from workflow_scripts.config import schema as swcfg
from workflow_scripts.config.schema import config_group
from workflow_scripts.data import ingest, quality
from workflow_scripts.data.ingest import QualityError
from workflow_scripts.data.jobs import ingest_bars
from workflow_scripts.job import Job
from workflow_scripts.report.sections import quality_section

SPEC = config_group("ingest")
CHECKS = {name: SPEC[name] for name in quality.CHECKS}
R = 20_000  # a row of the demo BTCUSDT file well after the trailing window fills


def checks(**actions) -> dict:
    """The default checks with some actions changed, e.g. checks(scale="warn")."""
    return {
        name: {**CHECKS[name], **({"action": actions[name]} if name in actions else {})} for name in CHECKS
    }


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return ingest.normalise_bars(pd.read_parquet(RAW / "BTCUSDT_1h.parquet"), "BTCUSDT")


def scaled(bars: pd.DataFrame, lo: int, hi: int, factor: float) -> pd.DataFrame:
    """Rows [lo, hi) quoted at `factor` times their price (volume unchanged)."""
    out = bars.copy()
    out.loc[lo : hi - 1, list(ingest.PRICE_COLUMNS)] *= factor
    return out


def found(bars, check, **kw) -> list[dict]:
    return [f for f in quality.check_bars(bars, "BTCUSDT", checks(**kw))["findings"] if f["check"] == check]


def ts(bars, i) -> str:
    return bars["timestamp"].iloc[i].isoformat()


def test_clean_real_bars_of_every_demo_coin_have_no_findings():
    """The defaults flag data faults, not crypto volatility: the 8 demo coins (2023-2026, with the 2023-06-10
    altcoin crash and XRP's +25 % hour of 2023-07-13) give no finding."""
    files = sorted(RAW.glob("*_1h.parquet"))
    assert len(files) == 8
    for path in files:
        bars, report = ingest.ingest(path, path.name[:-11], None, None, SPEC["min_bars"], CHECKS)
        assert report["findings"] == [], (path.name, report["findings"][:3])
        assert {c: report["checks"][c]["count"] for c in quality.CHECKS} == dict.fromkeys(quality.CHECKS, 0)


def test_a_stretch_quoted_x100_is_one_scale_finding_naming_its_bars(btc):
    bad = scaled(btc, R, R + 10, 100.0)
    (f,) = found(bad, "scale")
    assert f["bars"] == [ts(bad, R), ts(bad, R + 9)] and f["rows"] == [R, R + 9]
    assert f["value"] == pytest.approx(100.0, rel=0.05) and f["limit"] == CHECKS["scale"]["min_factor"]
    assert "10 bar(s) at another scale" in f["rule"] and f["symbol"] == "BTCUSDT"
    # the way in and the way out are also implausible jumps (warn by default)
    jumps = found(bad, "jump")
    assert [j["bars"][1] for j in jumps] == [ts(bad, R), ts(bad, R + 10)]
    assert all(j["value"] > CHECKS["jump"]["max_sigmas"] for j in jumps)


def test_one_bad_print_is_a_one_bar_stretch_and_a_drop_to_40pct_too(btc):
    (f,) = found(scaled(btc, R, R + 1, 0.1), "scale")
    assert f["bars"] == [ts(btc, R), ts(btc, R)] and f["value"] == pytest.approx(0.1, rel=0.05)
    (half,) = found(scaled(btc, R, R + 30, 0.4), "scale")
    assert half["rows"] == [R, R + 29]
    # a lasting level change is a jump, not a scale stretch (nothing undoes it)
    lasting = scaled(btc, R, len(btc), 0.5)
    assert found(lasting, "scale") == [] and [j["rows"] for j in found(lasting, "jump")] == [[R - 1, R]]


def test_a_stretch_longer_than_max_bars_is_not_a_scale_stretch(btc):
    n = CHECKS["scale"]["max_bars"]
    assert found(scaled(btc, R, R + n + 1, 100.0), "scale") == []
    assert len(found(scaled(btc, R, R + n, 100.0), "scale")) == 1


def test_jump_is_judged_against_the_bars_before_it_only(btc):
    bad = scaled(btc, R, len(btc), 1.6)  # +60 % in one hour; BTC's robust sigma there is 0.38 % per bar
    (f,) = found(bad, "jump")
    assert f["rows"] == [R - 1, R] and f["bars"] == [ts(bad, R - 1), ts(bad, R)]
    # causal: cutting the future off, or changing it, does not change the verdict or the value
    (cut,) = found(bad.iloc[: R + 1], "jump")
    assert cut["value"] == f["value"]
    # the bar's own return is not part of its sigma; the sigma at R is the one of the 720 returns before
    r, steps = quality.bar_returns(bad)
    sigma = quality.robust_sigma(r / np.sqrt(steps), CHECKS["jump"]["window_bars"], 1)
    expected = 1.4826 * np.median(np.abs(r[R - CHECKS["jump"]["window_bars"] : R]))
    assert sigma[R] == pytest.approx(expected)
    assert f["value"] == pytest.approx(abs(r[R]) / max(expected, CHECKS["jump"]["min_sigma"]))


def test_no_jump_is_judged_before_the_history_fills_and_a_gap_is_not_a_jump(btc):
    early = scaled(btc, 100, len(btc), 1.6)  # before min_history_bars (168) returns exist
    assert found(early, "jump") == []
    # +60 % across a 600-bar gap is ~2 % per bar: no jump (within one bar it is one, above)
    gap = scaled(btc.drop(index=range(R - 600, R)).reset_index(drop=True), R - 600, len(btc) - 600, 1.6)
    assert found(gap, "jump") == []


def test_flat_stretches_of_unchanged_close_or_zero_volume(btc):
    n = CHECKS["flat"]["min_bars"]
    bad = btc.copy()
    bad.loc[R : R + n - 1, list(ingest.PRICE_COLUMNS)] = bad.loc[R - 1, "close"]  # n bars at the last close
    (f,) = found(bad, "flat")
    assert f["bars"] == [ts(bad, R), ts(bad, R + n - 1)] and f["value"] == n and f["limit"] == n
    short = btc.copy()
    short.loc[R : R + n - 2, list(ingest.PRICE_COLUMNS)] = short.loc[R - 1, "close"]
    assert found(short, "flat") == []
    quiet = btc.copy()
    quiet.loc[R : R + 2 * n, "volume"] = 0.0
    (q,) = found(quiet, "flat")
    assert q["rows"] == [R, R + 2 * n] and q["value"] == 2 * n + 1


def test_endings_before_the_configured_end_or_in_a_flat_tail(btc):
    spec = CHECKS["ending"]
    end = (btc["timestamp"].iloc[-1] + pd.Timedelta(hours=spec["max_bars"] + 2)).strftime("%Y-%m-%d %H:%M")
    (f,) = quality.ending_findings(btc, "BTCUSDT", spec, end)
    assert f["bars"] == [ts(btc, len(btc) - 1)] and f["value"] == spec["max_bars"] + 1
    assert quality.ending_findings(btc, "BTCUSDT", spec, None) == []
    dead = btc.copy()
    dead.loc[len(btc) - 30 :, "volume"] = 0.0
    (d,) = quality.ending_findings(dead, "BTCUSDT", spec, None)
    assert d["rows"] == [len(btc) - 30, len(btc) - 1] and d["value"] == 30


def test_universe_endings_compare_each_coin_with_the_latest_last_bar():
    last = {"AUSDT": "2024-03-01T00:00:00+00:00", "BUSDT": "2024-02-20T00:00:00+00:00"}  # 2024: leap year
    (f,) = quality.universe_endings(last, {"AUSDT": 168, "BUSDT": 168})
    assert f["symbol"] == "BUSDT" and f["value"] == 10 * 24 and "universe's last bar" in f["rule"]
    assert quality.universe_endings(last, {"AUSDT": 168, "BUSDT": 10 * 24}) == []


def _job(tmp_path, raw, checks_spec, symbol="BTCUSDT") -> Job:
    out = {"bars": str(tmp_path / f"{symbol}.parquet"), "quality": str(tmp_path / f"{symbol}.quality.json")}
    spec = {"start": None, "end": None, "min_bars": SPEC["min_bars"], **checks_spec}
    return Job.from_manifest(
        {
            "entry": "data.ingest_bars",
            "input": {"raw": str(raw)},
            "output": out,
            "params": {"spec": spec},
            "wildcards": {"symbol": symbol},
            "threads": 1,
        }
    )


def test_stop_fails_the_job_naming_file_rows_and_rule_and_writes_nothing(tmp_path):
    raw = pd.read_parquet(RAW / "BTCUSDT_1h.parquet")
    raw.loc[R : R + 9, list(ingest.PRICE_COLUMNS)] *= 100.0
    path = tmp_path / "BTCUSDT_1h.parquet"
    raw.to_parquet(path, index=False)
    job = _job(tmp_path, path, checks(scale="stop"))
    with pytest.raises(QualityError) as err:
        ingest_bars(job)
    message = str(err.value)
    assert message.startswith(f"{path}: data-quality check failed (action stop; scale: 1 finding(s))")
    assert f"at row(s) {R}-{R + 9} ({raw['timestamp'].iloc[R].isoformat()} to " in message
    assert "10 bar(s) at another scale" in message and "ingest.scale.action=warn" in message
    assert "\n" not in message
    assert not list(tmp_path.glob("BTCUSDT.*"))  # neither the bars nor the quality file
    # warn: the same data is ingested, the findings are in the quality file
    ingest_bars(_job(tmp_path, path, checks(scale="warn")))
    report = json.loads((tmp_path / "BTCUSDT.quality.json").read_text())
    assert report["checks"]["scale"] == {
        "action": "warn",
        "count": 1,
        "settings": {k: v for k, v in CHECKS["scale"].items() if k != "action"},
    }
    assert [f["rows"] for f in report["findings"] if f["check"] == "scale"] == [[R, R + 9]]


def test_stop_rows_are_rows_of_the_raw_file_when_the_span_is_clipped(tmp_path):
    raw = pd.read_parquet(RAW / "BTCUSDT_1h.parquet")
    raw.loc[R : R + 2, list(ingest.PRICE_COLUMNS)] *= 100.0
    path = tmp_path / "BTCUSDT_1h.parquet"
    raw.to_parquet(path, index=False)
    start = raw["timestamp"].iloc[R - 2000].strftime("%Y-%m-%d")
    with pytest.raises(QualityError, match=rf"at row\(s\) {R}-{R + 2} "):
        ingest.ingest(path, "BTCUSDT", start, None, 1, checks(scale="stop"))


def test_min_bars_is_ingests_own_key(tmp_path):
    path = tmp_path / "X_1h.parquet"
    pd.read_parquet(RAW / "BTCUSDT_1h.parquet").tail(300).to_parquet(path, index=False)
    with pytest.raises(
        ingest.BarsError,
        match=r"X has 300 bars in the span .* at least 1000 are needed "
        r"\(ingest.min_bars\)",
    ):
        ingest.ingest(path, "X", None, None, 1000, CHECKS)


@pytest.mark.parametrize(
    "stamps, expected",
    [
        (["2024-01-01 00:00:00", "2024-01-01 01:00:00"], "2024-01-01 00:00"),  # naive strings: UTC
        (["2024-01-01T02:00:00+02:00", "2024-01-01T03:00:00+02:00"], "2024-01-01 00:00"),  # converted
        ([1704067200000, 1704070800000], "2024-01-01 00:00"),  # epoch ms
    ],
    ids=["naive-iso", "offset", "epoch-ms"],
)
def test_timestamps_without_a_timezone_are_read_as_utc(tmp_path, stamps, expected):
    df = pd.DataFrame(
        {"timestamp": stamps, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0}
    )
    path = tmp_path / "X_1h.csv"
    df.to_csv(path, index=False)
    bars, _ = ingest.ingest(path, "X", None, None)
    assert str(bars["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert bars["timestamp"].iloc[0] == pd.Timestamp(expected, tz="UTC")


def test_naive_datetimes_in_parquet_are_read_as_utc(tmp_path):
    raw = pd.read_parquet(RAW / "BTCUSDT_1h.parquet").head(50)
    naive = raw.assign(timestamp=raw["timestamp"].dt.tz_localize(None))
    assert naive["timestamp"].dt.tz is None
    naive.to_parquet(tmp_path / "X_1h.parquet", index=False)
    bars, _ = ingest.ingest(tmp_path / "X_1h.parquet", "X", None, None)
    pd.testing.assert_series_equal(bars["timestamp"], raw["timestamp"].astype("datetime64[ns, UTC]"))


def test_report_section_lists_findings_and_the_cross_coin_ending(btc):
    bad = scaled(btc, R, R + 10, 100.0)
    reports = {}
    for sym, bars in (("BTCUSDT", bad), ("ETHUSDT", btc.iloc[:-500])):
        reports[sym] = {**ingest.quality_report(bars, sym), **quality.check_bars(bars, sym, CHECKS)}
    html = quality_section(reports)
    assert "<td>BTCUSDT</td><td>scale</td><td>stop</td>" in html
    assert f"{ts(bad, R)} to {ts(bad, R + 9)}" in html
    assert (
        "<td>ETHUSDT</td><td>ending</td><td>warn</td>" in html
        and "before the universe&#x27;s last bar" in html
    )
    assert "<h2>Findings</h2>" in html and "4 finding(s)" in html  # scale, two jumps, the ending
    assert "No findings" in quality_section(
        {"BTCUSDT": {**ingest.quality_report(btc, "BTCUSDT"), **quality.check_bars(btc, "BTCUSDT", CHECKS)}}
    )


@pytest.mark.parametrize(
    "override, expected",
    [
        (
            "ingest.scale.action=halt",
            "config key 'ingest.scale.action': expected 'warn' or 'stop', got 'halt'",
        ),
        (
            "ingest.jump.min_history_bars=800",
            "config key 'ingest.jump.min_history_bars': expected an integer in [1, window_bars = 720], "
            "got 800",
        ),
        ("ingest.scale.min_factor=1", "config key 'ingest.scale.min_factor': expected a number > 1, got 1"),
    ],
)
def test_bad_ingest_settings_are_refused_at_start_up(override, expected):
    with pytest.raises(swcfg.ConfigError) as err:
        swcfg.compose([override])
    assert expected in str(err.value)


def _ingest_command(wd, *overrides) -> str:
    config = ["universe=tiny", "overrides=[" + ",".join(f'"{o}"' for o in overrides) + "]"]
    proc = subprocess.run(
        snakemake_cmd("-n", "-p", "--forceall", "results/ingest/BTCUSDT.parquet", config=config),
        cwd=wd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next(line for line in proc.stdout.splitlines() if "data.ingest_bars" in line)


@pytest.mark.slow
def test_ingest_params_hold_what_ingest_reads_not_the_windows(tmp_path):
    """A new target window leaves ingest's recorded params (its manifest) as they are; ingest's own keys
    change them."""
    wd = copy_workflow(tmp_path / "wf", symbols=("BTCUSDT", "ETHUSDT"))
    base = _ingest_command(wd)
    assert '"min_bars":1000' in base and '"scale":{"action":"stop"' in base
    assert _ingest_command(wd, "targets.windows=[2,3,5,10,20,50,150]") == base
    assert _ingest_command(wd, "ingest.min_bars=2000", "ingest.flat.action=stop") != base
