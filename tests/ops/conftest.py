"""Fixtures for the operations tests; the helpers live in tests/ops/helpers.py."""

from __future__ import annotations

import http.server
import threading

import pytest

from tests.ops.helpers import Recorder


@pytest.fixture()
def http_recorder():
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
