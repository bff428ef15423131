"""Seed 004's trial archive for agent trials: the top % of every symbol's agent trials copied to
`trial_archive/<code>.<SYMBOL>/` with a trial registry, and cleanup of old archived trials and logs. Reached
through the existing `swingflow archive --agent-models DIR` and `swingflow cleanup --agent-trials DIR`
(ops/cli.py).

    trial_archive/
        <key>/model/               the trial's registry model folder (package.py; verified before and after
                                   the copy, `load_folder` reads it)
        <key>/metadata.json        symbol, kind, code, validation value and metrics, the trial's parameters
        <key>/hyperparams.json     the trial's sampled parameters (seed 004's file)
        trial_registry.json        key -> {symbol, code, kind, value, grade, archived (UTC), folder}

The key is `<code>.<SYMBOL>`, the trial's registry VIN: a trial code names a configuration (kind, grade,
parameters, data date), which two symbols' studies can share, so two symbols' trials never collide in the
archive or evict each other.

The ranking is the validation objective of each trial (never a test number): per symbol, the best
`top_percent` % of its agent trials (at least one), as package.py `top_trials` chose which trials get a model
folder (`agents.archive_top_percent`). Archiving is idempotent: a trial already archived is left as is."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from workflow_scripts import artifacts
from workflow_scripts.agents.package import TRIALS_FILE, top_trials
from workflow_scripts.models.folder import verify_folder

REGISTRY_FILE = "trial_registry.json"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def archive_key(code: str, symbol: str) -> str:
    """A trial's key in the archive: `<code>.<SYMBOL>`, its registry VIN (jobs.package_agent_models)."""
    return f"{code}.{symbol}"


def _registry(archive_dir: Path) -> dict:
    path = archive_dir / REGISTRY_FILE
    return artifacts.read_json(path) if path.is_file() else {"trials": {}}


def archive_trials(
    models_root: str | os.PathLike,
    archive_dir: str | os.PathLike,
    top_percent: float = 10.0,
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> list[dict]:
    """Archive the top `top_percent` % of each symbol's agent trials found under `models_root`
    (results/agents/models/<SYMBOL>/trials.json, package_agent_models); returns the selected trials."""
    models_root, archive_dir = Path(models_root), Path(archive_dir)
    listings = sorted(models_root.glob(f"*/{TRIALS_FILE}"))
    if not listings:
        raise ValueError(f"{models_root}: no <SYMBOL>/{TRIALS_FILE} (run the agents line: agents=ppo)")
    chosen = []
    for listing in listings:
        doc = artifacts.read_json(listing)
        agents = [t for t in doc["trials"] if not str(t["kind"]).startswith("hybrid")]
        for t in top_trials(agents, top_percent):
            if not t.get("folder"):
                raise ValueError(
                    f"{listing}: trial {t['code']} is in the top {top_percent} % but has no model folder; "
                    f"rerun package_agent_models with agents.archive_top_percent >= {top_percent} "
                    f"(it is {doc['archive_top_percent']})"
                )
            chosen.append(t | {"symbol": doc["symbol"], "source": str(listing.parent / t["folder"])})
    if dry_run:
        return chosen
    stamp = (now or _now()).isoformat().replace("+00:00", "Z")
    registry = _registry(archive_dir)
    for t in chosen:
        key = archive_key(t["code"], t["symbol"])
        dest = archive_dir / key
        if key in registry["trials"] and dest.is_dir():
            continue
        verify_folder(t["source"])
        tmp = archive_dir / f".{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(t["source"], tmp / "model")
        verify_folder(tmp / "model")
        meta = {k: t[k] for k in ("symbol", "kind", "code", "number", "value", "validation", "params")}
        artifacts.write_json(tmp / "metadata.json", meta | {"archived": stamp})
        artifacts.write_json(tmp / "hyperparams.json", t["params"])
        shutil.rmtree(dest, ignore_errors=True)
        os.rename(tmp, dest)
        registry["trials"][key] = {
            "symbol": t["symbol"],
            "code": t["code"],
            "kind": t["kind"],
            "value": t["value"],
            "grade": t["validation"]["grade"],
            "archived": stamp,
            "folder": key,
        }
    artifacts.write_json(archive_dir / REGISTRY_FILE, registry)
    return chosen


def cleanup_trials(
    archive_dir: str | os.PathLike,
    *,
    keep_top: int = 20,
    keep_days: float = 7,
    dry_run: bool = False,
    log_dirs: Iterable[str | os.PathLike] = (),
    now: dt.datetime | None = None,
) -> dict:
    """Remove archived trials that are not among the `keep_top` best (validation value, all symbols) and
    were archived more than `keep_days` ago, and log files older than `keep_days` under `log_dirs`.
    {"trials": [keys], "logs": [paths], "dry_run"}; with dry_run nothing is deleted."""
    archive_dir = Path(archive_dir)
    now = now or _now()
    cutoff = now - dt.timedelta(days=float(keep_days))
    registry = _registry(archive_dir)
    ranked = sorted(registry["trials"].items(), key=lambda kv: (-kv[1]["value"], kv[0]))
    keep = {key for key, _ in ranked[: max(0, int(keep_top))]}
    doomed = [
        key
        for key, e in ranked
        if key not in keep and dt.datetime.fromisoformat(e["archived"].replace("Z", "+00:00")) < cutoff
    ]
    logs = [
        str(p)
        for d in map(Path, log_dirs)
        if d.is_dir()
        for p in sorted(d.rglob("*"))
        if p.is_file() and dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC) < cutoff
    ]
    if not dry_run:
        for key in doomed:
            shutil.rmtree(archive_dir / registry["trials"][key]["folder"], ignore_errors=True)
            del registry["trials"][key]
        artifacts.write_json(archive_dir / REGISTRY_FILE, registry)
        for p in logs:
            Path(p).unlink(missing_ok=True)
    return {"trials": doomed, "logs": logs, "dry_run": dry_run}
