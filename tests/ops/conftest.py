"""Fixtures for the operations tests; the helpers live in tests/ops/helpers.py."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ops.helpers import Recorder, run_env, run_snakemake
from tests.sandbox import copy_workflow

TOKEN = "123456:SECRET-token-do-not-log"
CHAT = "-100777"
# The tiny real run: two coins, the small grid, the short integration-test span, fewer feature lookbacks; both
# notification channels switched on for it, a tuning budget of 20 trials in all (as tests/tuning does).
OVERRIDES = [
    "features.lookbacks=[5,21]",
    "features.lags=[]",
    "tuning.budget.trials.stage2=1",
    "tuning.cv.min_train_rows=50",
    "env.notifications.telegram=true",
    "env.notifications.webhook_url_env=SWINGFLOW_WEBHOOK_URL",
]
TINY_RUN = [
    "env=integration-test",
    "universe=tiny",
    "targets=small",
    "overrides=[" + ",".join(f'"{o}"' for o in OVERRIDES) + "]",
]


@contextlib.contextmanager
def recorder_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.requests = []
    server.status = 200
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def http_recorder():
    with recorder_server() as server:
        yield server


def secrets_env(server, **extra) -> dict:
    return {
        "SWINGFLOW_TELEGRAM_TOKEN": TOKEN,
        "SWINGFLOW_TELEGRAM_CHAT_ID": CHAT,
        "SWINGFLOW_TELEGRAM_API": server.url,
        "SWINGFLOW_WEBHOOK_URL": f"{server.url}/hook?key=webhook-secret",
        **extra,
    }


@dataclass
class TinyRun:
    workdir: Path
    result: object
    requests: list
    seconds: float


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    """The whole real workflow, run once for the session on the tiny config in a sandbox, with both
    notification channels pointed at a local recorder. Shared by the notification, report (and DVC) tests."""
    wf = copy_workflow(tmp_path_factory.mktemp("tiny_run") / "wf")
    with recorder_server() as server:
        t0 = time.monotonic()
        r = run_snakemake(
            ["-c2", "--config", *TINY_RUN], cwd=wf, env=run_env(**secrets_env(server)), timeout=3000
        )
        seconds = time.monotonic() - t0
        requests = list(server.requests)
    assert r.returncode == 0, r.stderr[-6000:]
    return TinyRun(wf, r, requests, seconds)
