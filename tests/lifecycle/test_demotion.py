"""Champion rules on paper evidence (docs/LIFECYCLE.md, issue 14 item 5), with hand-built ledgers in a small
real registry: a deployed champion whose paper record has the minimum evidence and falls below the floor is
demoted (the previous champion restored, the reason recorded and notified), not otherwise; a failure leaves
the registry as it was; a second call changes nothing. A challenger with paper bars in common with its
champion is compared on those bars (at registration through `decide`'s hook, and after a paper update)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.ops.conftest import recorder_server
from workflow_scripts import artifacts
from workflow_scripts.config.schema import config_group
from workflow_scripts.lifecycle import paper
from workflow_scripts.ops import cli
from workflow_scripts.registry import paper_trading as pt
from workflow_scripts.registry import runs
from workflow_scripts.registry import store as reg

SYMBOL, SIDE = "BTCUSDT", "high"
START_S = 1_767_225_600  # 2026-01-01, paper bars hourly from here
# The rules as configured (config/registry/default.yaml); the workflow's profile is strict, the test folders'
# verdicts are exploratory.
SPEC = config_group("registry") | {"promote_gate_profiles": ["exploratory"]}
DEMOTION = SPEC["demotion"]


def returns_with_sharpe(sharpe: float, n: int, seed: int = 0) -> np.ndarray:
    """Per-bar returns whose annualised Sharpe (8760 bars a year) is exactly `sharpe`."""
    z = np.random.default_rng(seed).standard_normal(n)
    z = (z - z.mean()) / z.std(ddof=1)
    return 0.01 * z + sharpe * 0.01 / np.sqrt(8760)


def iso(ts: int) -> str:
    return pd.Timestamp(int(ts), unit="s", tz="UTC").isoformat()


def write_ledger(registry: Path, slot: int, vin: str, returns, trades: int, start_s: int = START_S) -> Path:
    """A ledger in the shape lifecycle/paper.py writes: one equity line per bar, `trades` trades of 4 bars
    spread over the bars, a summary."""
    folder = paper.ledger_path(registry / "paper", slot, vin)
    folder.mkdir(parents=True, exist_ok=True)
    ts = start_s + 3600 * np.arange(len(returns))
    equity = np.cumprod(1 + np.asarray(returns))
    (folder / paper.EQUITY_FILE).write_text(
        "".join(
            paper._line({"bar": iso(t), "equity": float(e), "ret": float(r)})
            for t, e, r in zip(ts, equity, returns)
        )
    )
    entries = np.linspace(0, len(ts) - 5, trades).astype(int) if trades else []
    (folder / paper.TRADES_FILE).write_text(
        "".join(paper._line({"entry_time": iso(ts[i]), "exit_time": iso(ts[i + 4])}) for i in entries)
    )
    artifacts.write_json(
        folder / paper.SUMMARY_FILE,
        {"slot": slot, "vin": vin, "symbol": SYMBOL, "side": SIDE, "bars_per_year": 8760},
    )
    return folder


def registry_with(factory, root: Path, *, previous: bool = True, challenger: bool = False) -> dict:
    """A registry whose BTCUSDT/high champion is `champion` (deployed in slot 0), with an older champion on
    its rollback stack (`previous`) and/or a challenger."""
    registry = root / "registry"
    names = (["previous"] if previous else []) + ["champion"] + (["challenger"] if challenger else [])
    vins = {n: reg.register(registry, factory.folder(side=SIDE), run="r1")["vin"] for n in names}
    setup = {"why": "set up by the test"}
    for n in names:
        beats = n != "challenger"
        reg.promote(registry, vins[n], verdict={"beats": beats, "reason": setup}, now="2026-01-01T00:00:00Z")
    reg.deploy(registry, 0, vins["champion"], now="2026-01-01T00:00:00Z")
    return {"registry": registry, **vins}


def state(registry: Path) -> dict[str, bytes]:
    """The bytes of everything a champion decision writes."""
    files = [
        reg.paths(registry)["index"],
        reg.paths(registry)["roster"],
        *reg.paths(registry)["champions"].glob("*"),
    ]
    return {p.name: p.read_bytes() for p in files if p.is_file()}


def slot_of(registry: Path) -> dict:
    return reg.read_champions(registry, SYMBOL)["sides"][SIDE]


def test_a_deployed_champion_below_the_floor_is_demoted_once(factory, tmp_path):
    w = registry_with(factory, tmp_path)
    registry = w["registry"]
    n_bars, n_trades = DEMOTION["min_bars"] + 80, DEMOTION["min_trades"] + 5
    write_ledger(registry, 0, w["champion"], returns_with_sharpe(-2.0, n_bars), n_trades)
    [event] = pt.judge(registry, SPEC, now="2026-03-01T00:00:00Z")
    assert (
        event["event"] == "demoted" and event["vin"] == w["champion"] and event["champion"] == w["previous"]
    )
    assert event["slots"] == [0]  # the slot still serves it: deploying is the operator's call
    slot = slot_of(registry)
    assert slot["champion"] == w["previous"] and slot["rolled_back_from"] == w["champion"]
    assert slot["previous"] == []
    index = reg.read_index(registry)["models"]
    assert index[w["champion"]]["status"] == "retired" and index[w["previous"]]["status"] == "champion"
    assert [r["vin"] for r in reg.roster(registry)] == [w["previous"]]
    record = slot["decisions"][-1]
    assert record["decision"] == "demoted" and record["vin"] == w["champion"]
    assert record["champion_before"] == w["champion"] and record["champion_after"] == w["previous"]
    ev = record["evidence"]
    assert (
        ev["measure"] == "annualised Sharpe of per-bar after-cost paper returns" and ev["source"] == "paper"
    )
    assert ev["bars"] == {"count": n_bars, "first": "2026-01-01T00:00:00Z", "last": iso_z(n_bars - 1)}
    assert ev["trades"] == n_trades and ev["sharpe"] == pytest.approx(-2.0)
    assert ev["floor"] == DEMOTION["sharpe_floor"]
    assert ev["minimum"] == {"bars": DEMOTION["min_bars"], "trades": DEMOTION["min_trades"]}
    assert ev["why"] == f"paper Sharpe -2 < floor 0 on {n_bars} bars, {n_trades} trades"
    assert record["reason"] == "demoted on its paper record: " + ev["why"]
    # idempotent: the same ledgers again change nothing, byte for byte
    before = state(registry)
    assert pt.judge(registry, SPEC, now="2026-03-02T00:00:00Z") == []
    assert state(registry) == before


def iso_z(i: int) -> str:
    return pd.Timestamp(START_S + 3600 * i, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "case, bars, trades, sharpe, deployed",
    [
        ("too few bars", DEMOTION["min_bars"] - 1, 40, -2.0, True),
        ("too few trades", DEMOTION["min_bars"] + 80, DEMOTION["min_trades"] - 1, -2.0, True),
        ("above the floor", DEMOTION["min_bars"] + 80, 40, 1.0, True),
        ("not deployed", DEMOTION["min_bars"] + 80, 40, -2.0, False),
    ],
)
def test_no_demotion_without_the_evidence_or_above_the_floor(
    factory, tmp_path, case, bars, trades, sharpe, deployed
):
    w = registry_with(factory, tmp_path)
    registry = w["registry"]
    write_ledger(registry, 0, w["champion"], returns_with_sharpe(sharpe, bars), trades)
    if not deployed:
        reg.deploy(registry, 0, w["previous"])  # the champion's ledger stays, but no slot serves it
    before = state(registry)
    assert pt.judge(registry, SPEC) == [], case
    assert state(registry) == before and slot_of(registry)["champion"] == w["champion"]


def test_without_a_previous_champion_the_slot_is_left_empty(factory, tmp_path):
    w = registry_with(factory, tmp_path, previous=False)
    registry = w["registry"]
    write_ledger(registry, 0, w["champion"], returns_with_sharpe(-1.0, DEMOTION["min_bars"]), 30)
    [event] = pt.judge(registry, SPEC)
    assert event["champion"] is None and slot_of(registry)["champion"] is None
    assert reg.roster(registry) == [] and reg.get_entry(registry, w["champion"])["status"] == "retired"
    assert slot_of(registry)["decisions"][-1]["champion_after"] is None
    assert pt.judge(registry, SPEC) == []


def test_a_failed_demotion_leaves_the_registry_as_it_was(factory, tmp_path, monkeypatch):
    w = registry_with(factory, tmp_path)
    registry = w["registry"]
    folder = write_ledger(registry, 0, w["champion"], returns_with_sharpe(-2.0, 900), 40)
    before = state(registry)
    real = artifacts.write_json

    def failing(path, obj):
        if Path(path).name == "index.json":  # after champions/<SYMBOL>.json was replaced
            raise OSError("disk full (test)")
        real(path, obj)

    monkeypatch.setattr(artifacts, "write_json", failing)
    with pytest.raises(OSError, match="disk full"):
        pt.judge(registry, SPEC)
    assert state(registry) == before  # the champions file got its old bytes back
    monkeypatch.setattr(artifacts, "write_json", real)
    # a damaged ledger is refused by name before anything is decided
    equity = folder / paper.EQUITY_FILE
    lines = equity.read_text().splitlines(keepends=True)
    equity.write_text(
        "".join(lines[:5]) + '{"bar":"2026-01-01T05:00:00+00:00","equity":1}\n' + "".join(lines[6:])
    )
    with pytest.raises(
        paper.LedgerError, match=r"equity\.jsonl: every line must be a JSON object with \['bar', 'ret'\]"
    ):
        pt.judge(registry, SPEC)
    assert state(registry) == before
    equity.write_text("".join(lines))
    assert [e["event"] for e in pt.judge(registry, SPEC)] == ["demoted"]


def paired(n: int, better_by: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(champion, challenger) per-bar returns: the challenger earns `better_by` more per bar, with noise."""
    champion = returns_with_sharpe(0.5, n, seed)
    noise = np.random.default_rng(seed + 1).standard_normal(n) * 0.001
    return champion, champion + better_by + noise


def test_a_challenger_is_judged_on_the_paper_bars_it_shares_with_the_champion(factory, tmp_path):
    w = registry_with(factory, tmp_path, previous=False, challenger=True)
    registry = w["registry"]
    n, shift = 900, 200  # the challenger's ledger starts 200 bars later: 700 common bars
    champ, chall = paired(n + shift, better_by=0.001)
    write_ledger(registry, 0, w["champion"], champ[:n], 40)
    # too few common bars (compare.min_bars): nothing is judged, nothing written
    short = n - SPEC["compare"]["min_bars"] + 1
    write_ledger(registry, 1, w["challenger"], chall[short : short + n], 40, START_S + 3600 * short)
    before = state(registry)
    assert pt.judge(registry, SPEC) == [] and state(registry) == before
    write_ledger(registry, 1, w["challenger"], chall[shift : shift + n], 40, START_S + 3600 * shift)
    [event] = pt.judge(registry, SPEC, now="2026-03-01T00:00:00Z")
    assert event["event"] == "promoted" and (event["vin"], event["replaced"]) == (
        w["challenger"],
        w["champion"],
    )
    slot = slot_of(registry)
    assert slot["champion"] == w["challenger"] and [p["vin"] for p in slot["previous"]] == [w["champion"]]
    ev = slot["decisions"][-1]["evidence"]
    assert ev["source"] == "paper" and ev["bars"]["count"] == n - shift
    assert ev["bars"]["first"] == iso_z(shift) and ev["test"]["p_value"] < SPEC["compare"]["alpha"]
    before = state(registry)
    assert pt.judge(registry, SPEC) == [] and state(registry) == before


def test_decide_compares_on_paper_bars_when_both_have_them(factory, tmp_path):
    """Registration (runs.decide with paper_trading.paper_evidence as the hook): a newcomer that was
    paper-traded is compared with the champion on their common paper bars; without ledgers on validation."""
    registry = tmp_path / "registry"
    champion = reg.register(registry, factory.folder(side=SIDE, validation=1.0), run="r1")["vin"]
    reg.promote(registry, champion)
    entry = reg.register(registry, factory.folder(side=SIDE, validation=1.0), run="r2")
    hook = lambda vin: pt.paper_evidence(registry, vin)  # noqa: E731 - what register_run passes
    champ, chall = paired(800, better_by=0.001)
    write_ledger(registry, 0, champion, champ, 40)
    write_ledger(registry, 1, entry["vin"], chall, 40)
    [decision] = runs.decide(registry, [entry], SPEC, "r2", paper=hook)
    assert decision["decision"] == "champion" and decision["evidence"]["source"] == "paper"
    assert decision["evidence"]["bars"]["count"] == 800
    other = reg.register(registry, factory.folder(side=SIDE, validation=1.0), run="r3")
    [decision] = runs.decide(registry, [other], SPEC, "r3", paper=hook)  # no ledger: validation bars
    assert decision["evidence"]["source"] == "validation"


def test_swingflow_paper_judges_and_notifies(factory, tmp_path, monkeypatch, capsys):
    """`swingflow paper` after its ledger update: the demotion is printed and notified (the paper update
    itself is tested in test_refit_and_paper.py; here no slot has new bars)."""
    w = registry_with(factory, tmp_path)
    registry = w["registry"]
    write_ledger(registry, 0, w["champion"], returns_with_sharpe(-2.0, 900), 40)
    monkeypatch.setattr(pt, "paper_trade", lambda *a, **k: [])
    sent = []
    monkeypatch.setattr(
        cli.notify, "deliver", lambda text, payload, settings: sent.append((text, payload)) or {}
    )
    assert cli.main(["--registry", str(registry), "--json", "paper", "--symbol", SYMBOL]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["slots"] == [] and [c["event"] for c in doc["changes"]] == ["demoted"]
    [(text, payload)] = sent
    assert f"BTCUSDT/high DEMOTED {w['champion']}: paper Sharpe -2 < floor 0 on 900 bars, 40 trades" in text
    assert f"champion now {w['previous']}" in text and payload["event"] == "paper_judgement"
    assert cli.main(["--registry", str(registry), "--json", "paper"]) == 0
    assert json.loads(capsys.readouterr().out)["changes"] == [] and len(sent) == 1


def test_the_rule_entry_demotes_and_notifies(factory, tmp_path):
    """rules/lifecycle.smk paper_trade through the one job runner: the rule's spec and notifications params;
    the change is in the declared output and posted to the webhook."""
    w = registry_with(factory, tmp_path)
    registry = w["registry"]
    write_ledger(registry, 0, w["champion"], returns_with_sharpe(-2.0, 900), 40)
    bars = (
        tmp_path / "ingest"
    )  # empty: the slot is skipped (its paper update is tested in test_refit_and_paper)
    out = tmp_path / "results" / "lifecycle" / "paper" / f"{SYMBOL}.json"
    manifest = {
        "entry": "lifecycle.paper_trade",
        "input": {"roster": str(tmp_path / "roster.json"), "bars": [str(bars / f"{SYMBOL}.parquet")]},
        "output": {"summary": str(out)},
        "params": {
            "registry": str(registry),
            "ledger": str(registry / "paper"),
            "spec": SPEC,
            "notifications": {"telegram": False, "webhook_url_env": "SWINGFLOW_TEST_WEBHOOK"},
        },
        "threads": 1,
        "wildcards": {"symbol": SYMBOL},
    }
    with recorder_server() as server:
        run = subprocess.run(
            [sys.executable, "-m", "workflow_scripts.job", json.dumps(manifest)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
            env={**os.environ, "SWINGFLOW_TEST_WEBHOOK": f"{server.url}/hook"},
        )
        requests = list(server.requests)
    assert run.returncode == 0, run.stderr
    doc = artifacts.read_json(out)
    assert [r["slot"] for r in doc["slots"] if "skipped" in r] == [0]
    assert [(c["event"], c["vin"], c["champion"]) for c in doc["changes"]] == [
        ("demoted", w["champion"], w["previous"])
    ]
    [posted] = [r for r in requests if r["path"] == "/hook"]
    assert posted["json"]["event"] == "paper_judgement" and "DEMOTED" in posted["json"]["text"]
    assert slot_of(registry)["champion"] == w["previous"]
