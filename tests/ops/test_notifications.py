"""Notifications: message building from the run's files, delivery to Telegram's Bot API and a JSON webhook (a
local HTTP recorder stands in for both), and the hooks inside a real Snakemake run. Delivery never fails the
workflow and the token never reaches a log or a file."""

from __future__ import annotations

import http.server
import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from tests.ops.conftest import CHAT, TOKEN, secrets_env
from tests.ops.helpers import FIXTURES, run_env, run_snakemake
from workflow_scripts.ops import notify

BOTH = {"telegram": True, "webhook_url_env": "SWINGFLOW_WEBHOOK_URL"}


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def test_delivers_to_telegram_and_the_webhook(http_recorder):
    report = notify.deliver("hello", {"event": "start"}, BOTH, environ=secrets_env(http_recorder))
    assert report == {"telegram": "sent", "webhook": "sent"}
    tg, hook = sorted(http_recorder.requests, key=lambda r: r["path"])
    assert tg["path"] == f"/bot{TOKEN}/sendMessage"
    assert tg["json"] == {"chat_id": CHAT, "text": "hello", "disable_web_page_preview": True}
    assert hook["path"] == "/hook?key=webhook-secret"
    assert hook["json"] == {"event": "start", "text": "hello"}


def test_channels_are_skipped_without_config_or_secrets(http_recorder):
    assert notify.deliver(
        "x", {}, {"telegram": False, "webhook_url_env": None}, environ=secrets_env(http_recorder)
    ) == {"telegram": "skipped: disabled in config", "webhook": "skipped: disabled in config"}
    report = notify.deliver("x", {}, BOTH, environ={})
    assert report["telegram"].startswith("skipped: SWINGFLOW_TELEGRAM_TOKEN")
    assert report["webhook"] == "skipped: SWINGFLOW_WEBHOOK_URL not set"
    off = notify.deliver("x", {}, BOTH, environ=secrets_env(http_recorder, SWINGFLOW_NOTIFY="off"))
    assert set(off.values()) == {"skipped: SWINGFLOW_NOTIFY=off"}
    assert http_recorder.requests == []


def test_long_messages_are_cut_to_telegrams_limit(http_recorder):
    notify.deliver("y" * 10_000, {}, {"telegram": True}, environ=secrets_env(http_recorder))
    assert len(http_recorder.requests[0]["json"]["text"]) <= notify.TELEGRAM_LIMIT


def test_undeliverable_messages_are_logged_without_the_token_and_never_raise(http_recorder, caplog, capfd):
    http_recorder.status = 500
    caplog.set_level(logging.WARNING, logger="swingflow.notify")
    notify.LOG.propagate = True
    try:
        report = notify.deliver("x", {}, BOTH, environ=secrets_env(http_recorder), timeout=2)
        dead = notify.deliver(
            "x",
            {},
            BOTH,
            timeout=2,
            environ={
                "SWINGFLOW_TELEGRAM_TOKEN": TOKEN,
                "SWINGFLOW_TELEGRAM_CHAT_ID": CHAT,
                "SWINGFLOW_TELEGRAM_API": "http://127.0.0.1:9",
                "SWINGFLOW_WEBHOOK_URL": "http://127.0.0.1:9/x",
            },
        )
    finally:
        notify.LOG.propagate = False
    assert report == {"telegram": "failed: HTTP 500", "webhook": "failed: HTTP 500"}
    assert len(http_recorder.requests) == 2 * notify.ATTEMPTS  # 5xx is retried once
    assert all(v.startswith("failed: ") for v in dead.values())
    out = caplog.text + "".join(capfd.readouterr())
    assert "not delivered" in out
    assert TOKEN not in out and "webhook-secret" not in out


def test_a_bad_token_is_not_retried(http_recorder):
    http_recorder.status = 401
    assert (
        notify.deliver("x", {}, {"telegram": True}, environ=secrets_env(http_recorder))["telegram"]
        == "failed: HTTP 401"
    )
    assert len(http_recorder.requests) == 1


def test_a_server_that_never_answers_costs_at_most_the_timeout():
    class Silent(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            time.sleep(5)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        t0 = time.monotonic()
        r = notify.send_webhook({}, f"http://127.0.0.1:{server.server_address[1]}/", timeout=0.5)
        assert r.startswith("failed: ") and time.monotonic() - t0 < 4
    finally:
        server.shutdown()
        server.server_close()


ERROR_LOG = """\
[Tue Nov 24 04:02:04 2026]
Error in rule train_stage1:
    message: None
    jobid: 7
    input: results/features/ETHUSDT.parquet
    output: results/stage1/ETHUSDT/w2/x/model.txt
    log: logs/stage1/ETHUSDT/w2.log (check log file(s) for error details)
    wildcards: symbol=ETHUSDT, window=2
    shell:
        python -m x
        (command exited with non-zero exit code)
Trying to restart job 7.
[Tue Nov 24 04:02:05 2026]
Error in rule train_stage1:
    message: SLURM-job '42' failed, SLURM status is: 'TIMEOUT'. Reason: Unknown.
    jobid: 7
    log: logs/stage1/ETHUSDT/w2.log, .snakemake/slurm_logs/rule_train_stage1/ETHUSDT_2/42.log \
(check log file(s) for error details)
    wildcards: symbol=ETHUSDT, window=2
Error in rule ingest_bars:
    jobid: 3
    log: logs/ingest/SOLUSDT.log (check log file(s) for error details)
Trying to restart job 3.
"""


def test_failed_jobs_are_read_from_snakemakes_log(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(ERROR_LOG)
    jobs = notify.failed_jobs(log)
    assert jobs["retried"] == 2
    assert jobs["failed"] == [
        {
            "rule": "train_stage1",
            "jobid": "7",
            "wildcards": "symbol=ETHUSDT, window=2",
            "logs": [
                "logs/stage1/ETHUSDT/w2.log",
                ".snakemake/slurm_logs/rule_train_stage1/ETHUSDT_2/42.log",
            ],
            "message": "SLURM-job '42' failed, SLURM status is: 'TIMEOUT'. Reason: Unknown.",
        }
    ]
    assert notify.failed_jobs(tmp_path / "missing.log") == {"failed": [], "retried": 0}
    text, payload = notify.error_message({"env": "t"}, {"started": time.time() - 5}, log)
    assert "- train_stage1 [symbol=ETHUSDT, window=2]: logs/stage1/ETHUSDT/w2.log" in text
    assert "TIMEOUT" in text and payload["failures"][0]["jobid"] == "7"


def test_hooks_never_raise_even_on_nonsense(tmp_path):
    assert "error" in notify.on_success(log=None, settings=BOTH, context=object(), workdir=tmp_path)


# ---- the hooks inside a real Snakemake run -----------------------------------------------------------------
def prepare(tmp_path: Path):
    # a run record left by an earlier run: it must not count for this one
    old = tmp_path / "results" / "registry" / "run_status.json"
    old.parent.mkdir(parents=True)
    old.write_text(
        json.dumps({"run": "r0", "symbols": {"ETHUSDT": {"changed": True, "champion": {"low": "OLD"}}}})
    )
    os.utime(old, (time.time() - 3600, time.time() - 3600))


def texts(server) -> list[str]:
    return [r["json"]["text"] for r in server.requests if r["path"].startswith("/bot")]


def no_secret_anywhere(tmp_path: Path, result) -> None:
    assert (
        TOKEN not in result.stdout + result.stderr and "webhook-secret" not in result.stdout + result.stderr
    )
    for f in tmp_path.rglob("*"):
        if f.is_file():
            body = f.read_bytes()
            assert TOKEN.encode() not in body and b"webhook-secret" not in body, f


def test_a_successful_run_sends_start_and_summary(tmp_path, http_recorder):
    prepare(tmp_path)
    r = run_snakemake(
        ["-s", str(FIXTURES / "notify" / "Snakefile"), "-d", str(tmp_path), "-c1", "-F"],
        cwd=tmp_path,
        env=run_env(**secrets_env(http_recorder)),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(texts(http_recorder)) == 2, r.stderr[-4000:]
    start, summary = texts(http_recorder)
    assert start.startswith("swingflow [ops-test] started") and "symbols (2): BTCUSDT, ETHUSDT" in start
    assert "models trained: 2 (skipped: 0)" in summary
    assert "passed quality gates: 1 of 2" in summary
    assert "champions changed: 1" in summary  # from this run's results/registry/run_status.json
    assert "BTCUSDT: high NEW-VIN, low SAME-VIN" in summary and "ETH-VIN" not in summary
    assert "failures: 0" in summary
    hooks = [r["json"] for r in http_recorder.requests if r["path"].startswith("/hook")]
    assert [h["event"] for h in hooks] == ["start", "success"]
    assert hooks[1]["models"] == {"trained": 2, "skipped": 0, "passed": 1, "gated": 2}
    no_secret_anywhere(tmp_path, r)


def test_a_failed_run_alerts_with_the_failed_jobs_log(tmp_path, http_recorder):
    prepare(tmp_path)
    r = run_snakemake(
        [
            "-s",
            str(FIXTURES / "notify" / "Snakefile"),
            "-d",
            str(tmp_path),
            "-c1",
            "-F",
            "--retries",
            "1",
            "--config",
            "fail=1",
        ],
        cwd=tmp_path,
        env=run_env(**secrets_env(http_recorder)),
        timeout=120,
    )
    assert r.returncode != 0
    _start, alert = texts(http_recorder)
    assert "FAILED" in alert
    assert "- train [symbol=ETHUSDT]: logs/stage1/ETHUSDT/w2.log" in alert
    assert "attempts retried before: 1" in alert
    assert "training blew up" in (tmp_path / "logs/stage1/ETHUSDT/w2.log").read_text()
    no_secret_anywhere(tmp_path, r)


def test_an_unreachable_endpoint_never_fails_the_workflow(tmp_path):
    prepare(tmp_path)
    env = run_env(
        SWINGFLOW_TELEGRAM_TOKEN=TOKEN,
        SWINGFLOW_TELEGRAM_CHAT_ID=CHAT,
        SWINGFLOW_TELEGRAM_API="http://127.0.0.1:9",
        SWINGFLOW_WEBHOOK_URL="http://127.0.0.1:9/hook",
    )
    r = run_snakemake(
        ["-s", str(FIXTURES / "notify" / "Snakefile"), "-d", str(tmp_path), "-c1", "-F"],
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "not delivered" in r.stderr
    no_secret_anywhere(tmp_path, r)


def test_champions_changed_come_from_this_runs_registry_record(tmp_path):
    prepare(tmp_path)
    assert (
        notify.champions_changed(tmp_path, since=time.time() - 60) == {}
    )  # the record is older than the run
    assert notify.champions_changed(tmp_path, since=0) == {"ETHUSDT": {"low": "OLD"}}
    (tmp_path / notify.RUN_STATUS).write_text("[1, 2]")
    assert notify.champions_changed(tmp_path, since=0) == {}
    assert notify.champions_changed(tmp_path / "nowhere", since=0) == {}


# ---- the real workflow's own hooks (Snakefile), through the whole tiny run --------------------------------
def count_models(wf: Path) -> tuple[int, int, int]:
    """(stage-1 models trained, gate verdicts passed, verdicts) as the run's files say."""
    trained = sum(
        json.loads(p.read_text()).get("status", "trained") == "trained"
        for p in (wf / "results" / "stage1").glob("**/metrics.json")
    )
    verdicts = [
        json.loads(p.read_text()).get("gate", {}).get("passed")
        for p in (wf / "results" / "evaluation").glob("**/*.json")
    ]
    verdicts = [v for v in verdicts if v is not None]
    return trained, sum(map(bool, verdicts)), len(verdicts)


@pytest.mark.slow
def test_the_real_workflow_sends_start_and_a_summary_of_what_it_did(tiny_run):
    hooks = [r["json"] for r in tiny_run.requests if r["path"].startswith("/hook")]
    tg = [r["json"]["text"] for r in tiny_run.requests if r["path"].startswith("/bot")]
    assert [h["event"] for h in hooks] == ["start", "success"] and len(tg) == 2
    start, summary = tg
    assert (
        start.startswith("swingflow [integration-test] started") and "symbols (2): BTCUSDT, ETHUSDT" in start
    )
    trained, passed, gated = count_models(tiny_run.workdir)
    assert trained > 0
    assert f"models trained: {trained} (skipped: " in summary
    assert f"passed quality gates: {passed} of {gated}" in summary
    status = json.loads((tiny_run.workdir / "results/registry/run_status.json").read_text())
    changed = [s for s, st in status["symbols"].items() if st["changed"]]
    assert f"champions changed: {len(changed)}" in summary
    assert all(f"  {s}: " in summary for s in changed)
    assert "failures: 0" in summary
    assert hooks[1]["models"]["trained"] == trained and hooks[1]["failures"] == []
    no_secret_anywhere(tiny_run.workdir, tiny_run.result)


def test_the_summary_counts_this_runs_models_and_gate_verdicts(tmp_path):
    def write(rel, doc, age_s=0.0):
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(doc))
        if age_s:
            t = time.time() - age_s
            os.utime(f, (t, t))

    write("results/stage1/BTCUSDT/w2/a/metrics.json", {"status": "trained"})
    write("results/stage1/BTCUSDT/w2/b/metrics.json", {"status": "skipped"})
    write("results/stage1/BTCUSDT/w3/a/metrics.json", {"status": "trained"}, age_s=3600)  # an earlier run
    write("results/evaluation/stage1/BTCUSDT/w2/a.json", {"status": "evaluated", "gate": {"passed": True}})
    write("results/evaluation/stage1/BTCUSDT/w2/b.json", {"status": "evaluated", "gate": {"passed": False}})
    write("results/evaluation/summary.json", {"rows": []})
    assert notify.models_summary(tmp_path, since=time.time() - 60) == {
        "trained": 1,
        "skipped": 1,
        "passed": 1,
        "gated": 2,
    }
