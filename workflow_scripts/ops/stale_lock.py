"""Resume after a hard kill without `snakemake --unlock`, while a live second Snakemake is still refused.

Snakemake locks a working directory with `.snakemake/locks/<n>.{input,output}.lock` (lists of files, no
process id) and removes them when it exits. A SIGKILL, a power loss or Slurm killing the head job leaves them
behind, and the next `snakemake` stops with "Directory cannot be locked" until someone runs `--unlock`, which
is also what one would type, wrongly, while another Snakemake is really running.

So each Snakemake of this workflow records who it is before it takes the lock: `rules/common.smk` calls
`claim` in the main process (`workflow.is_main_process`; job subprocesses and cluster jobs skip it), which

1. reads the owner records in `.snakemake/swingflow-owners/` (`<host>.<pid>.json`: host, pid, process start
   time), drops those whose process is gone on this host (a pid that was reused has another start time), and,
   if lock files exist and no owner is left alive, removes the lock files: they belong to a dead Snakemake;
2. records the calling process as an owner and removes that record at exit (after Snakemake's own unlock).

While any owner is alive (or runs on another host, which cannot be checked from here), the locks stay, and
Snakemake refuses an overlapping run with its own message ("Directory cannot be locked"); `claim` adds a line
naming the live owner. Lock files without any owner record (a Snakemake that did not run this workflow's code)
are left alone too.

Limits: the owner is the Snakemake process itself; a kill of that process alone may leave its jobs running.
They are marked incomplete and are redone by the next run; their outputs are written atomically
(workflow_scripts.artifacts), so the late writer replaces whole files with identical bytes (fixed seeds).
"""

from __future__ import annotations

import atexit
import json
import os
import socket
from pathlib import Path

import psutil

from workflow_scripts import artifacts

OWNERS_DIR = "swingflow-owners"
LOCKS_DIR = "locks"
START_TOLERANCE_S = (
    0.05  # psutil's create_time is computed from boot time and clock ticks: equal up to rounding
)


def identity(pid: int) -> dict:
    """What identifies a running process across pid reuse: host, pid and start time (seconds since the
    epoch)."""
    return {"host": socket.gethostname(), "pid": int(pid), "started": psutil.Process(pid).create_time()}


def is_alive(owner: dict) -> bool:
    """True if the recorded process still runs. A record from another host cannot be checked: assumed
    alive."""
    if owner.get("host") != socket.gethostname():
        return True
    try:
        proc = psutil.Process(int(owner["pid"]))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(proc.create_time() - float(owner["started"])) <= START_TOLERANCE_S
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, TypeError, ValueError):
        return False


def owner_records(smk_dir: Path) -> dict[Path, dict]:
    """{record file: owner} of `.snakemake/swingflow-owners/` (an unreadable record counts as a dead
    owner)."""
    folder = Path(smk_dir) / OWNERS_DIR
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out[path] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            out[path] = {}
    return out


def lock_files(smk_dir: Path) -> list[Path]:
    folder = Path(smk_dir) / LOCKS_DIR
    return sorted(folder.glob("*.lock")) if folder.is_dir() else []


def clear_stale_locks(smk_dir: Path) -> list[str]:
    """Drop dead owners' records; remove the lock files if they exist and no owner is alive. Returns what it
    did or found, as lines for the user."""
    smk_dir = Path(smk_dir)
    records = owner_records(smk_dir)
    live = {path: o for path, o in records.items() if is_alive(o)}
    dead = {path: o for path, o in records.items() if path not in live}
    for path in dead:
        path.unlink(missing_ok=True)
    locks = lock_files(smk_dir)
    if not locks:
        return []
    if live:
        return [
            (
                f"swingflow: Snakemake pid {o['pid']} on {o['host']} (started {_when(o)}) is running in "
                f"{smk_dir.parent.resolve()}; its lock stays"
            )
            for o in live.values()
        ]
    if not dead:
        return [
            (
                f"swingflow: lock files in {smk_dir / LOCKS_DIR} have no owner record; left in place (if no "
                "other Snakemake runs here: snakemake --unlock)"
            )
        ]
    for path in locks:
        path.unlink(missing_ok=True)
    pids = ", ".join(str(o.get("pid", "?")) for o in dead.values())
    return [
        (
            f"swingflow: removed the lock left by Snakemake pid {pids} (no longer running): "
            f"{', '.join(p.name for p in locks)}"
        )
    ]


def register(smk_dir: Path, pid: int | None = None) -> Path:
    """Record `pid` (default: this process) as an owner of the directory; the record is removed at exit."""
    me = identity(os.getpid() if pid is None else pid)
    path = Path(smk_dir) / OWNERS_DIR / f"{me['host']}.{me['pid']}.json"
    artifacts.write_json(path, me)
    if pid is None:
        atexit.register(path.unlink, missing_ok=True)
    return path


def claim(smk_dir: str | os.PathLike = ".snakemake") -> list[str]:
    """Called once by the main Snakemake process before it locks: clear a dead run's lock, then record
    itself."""
    smk_dir = Path(smk_dir)
    lines = clear_stale_locks(smk_dir)
    register(smk_dir)
    return lines


def _when(owner: dict) -> str:
    import datetime as dt

    try:
        return dt.datetime.fromtimestamp(float(owner["started"]), dt.UTC).isoformat(timespec="seconds")
    except (KeyError, TypeError, ValueError):
        return "?"
