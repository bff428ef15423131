"""Helpers for the operations tests (imported as tests.ops.helpers): running Snakemake, an HTTP recorder,
ports."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BIN = Path(sys.executable).parent


def snakemake_exe() -> str:
    exe = BIN / "snakemake"
    return str(exe) if exe.exists() else (shutil.which("snakemake") or "snakemake")


def run_env(**extra: str) -> dict:
    """The environment Snakemake runs in: this interpreter's bin first, the repo importable, no proxies for
    the local HTTP recorder, no real notification secrets."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and not k.startswith("SWINGFLOW_")
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(ROOT)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def run_snakemake(
    args: list[str], cwd: Path, env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """Always under coreutils `timeout -k 10`: a hung run (for example a Slurm status loop) cannot hang CI."""
    cmd = ["timeout", "-k", "10", str(timeout), snakemake_exe(), *args]
    return subprocess.run(cmd, cwd=cwd, env=env or run_env(), capture_output=True, check=False, text=True)


class Recorder(http.server.BaseHTTPRequestHandler):
    """Records every request; answers with the status in the server's `status` attribute."""

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        self.server.requests.append({"path": self.path, "body": body, "json": parsed})
        status = self.server.status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"ok": status == 200}).encode())

    def log_message(self, *args):  # keep pytest output clean
        pass


def free_port_pair() -> int:
    """A port p with p and p + 1 free (slurmctld, slurmd)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 65000:
            continue
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")
