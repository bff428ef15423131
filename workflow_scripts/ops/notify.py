"""Run notifications: start, completion summary and failure alerts, to Telegram and to a generic JSON webhook.

Called from the Snakefile's onstart / onsuccess / onerror hooks (docs/OPERATIONS.md has the snippet):

    notify.on_start(log, settings, context)     "started": env, symbols, jobs planned, host
    notify.on_success(log, settings, context)   summary: models trained in this run (and skipped), models
                                                  passed their quality gates, champions changed, failures
                                                  retried
    notify.on_error(log, settings, context)     every job that failed for good, with its log path(s)

`settings` is the config slice `env.notifications`: {"telegram": bool, "webhook_url_env": name of the
environment variable holding the webhook URL, or null}. Secrets come from the environment only and are never
logged or written anywhere: SWINGFLOW_TELEGRAM_TOKEN, SWINGFLOW_TELEGRAM_CHAT_ID, the webhook URL variable (by
convention SWINGFLOW_WEBHOOK_URL). SWINGFLOW_TELEGRAM_API overrides https://api.telegram.org (tests point it
at a local server). SWINGFLOW_NOTIFY=off silences every channel.

Delivery never raises and never fails the workflow: each channel gets a short timeout and one retry, and a
message that cannot be delivered is logged (with the token redacted) and dropped.

"This run" is measured from a small state file written at start (.snakemake/swingflow/notify_start.json: the
start time; no secrets), so the summary counts the models written since. Champions changed come from the
registry rule's run record, results/registry/run_status.json ({"run", "symbols": {SYMBOL: {"registered":
[...], "champion": {side: VIN}, "changed": bool}}}), when this run wrote it; otherwise none changed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflow_scripts.targets.grammar import target_grid

LOG = logging.getLogger("swingflow.notify")
if not LOG.handlers:  # inside Snakemake nobody configures logging: make warnings visible on stderr
    _h = logging.StreamHandler(sys.stderr)
    _h.setFormatter(logging.Formatter("swingflow.notify: %(levelname)s: %(message)s"))
    LOG.addHandler(_h)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False

TELEGRAM_API = "https://api.telegram.org"
TELEGRAM_LIMIT = 4096  # characters per message (Bot API)
STATE_FILE = Path(".snakemake/swingflow/notify_start.json")
TIMEOUT_S = 10.0
ATTEMPTS = 2
MAX_LISTED = 20  # failures / changed champions listed by name; the rest are counted


# ---- what happened: read from the run's own files ----------------------------------------------------------
def failed_jobs(log_path: str | os.PathLike | None) -> dict:
    """Parse Snakemake's log: jobs that failed for good (no restart followed) and the attempts that were
    retried.

    Returns {"failed": [{rule, jobid, wildcards, logs: [paths], message}], "retried": n}. Works for local and
    Slurm runs (Slurm failures add the job's slurm log to `log:` and a `SLURM-job ... failed` message).
    """
    out: dict[str, Any] = {"failed": [], "retried": 0}
    text = "\n".join(_read_text(p) for p in _log_files(log_path))
    last_error: dict[str, dict] = {}
    order: list[str] = []
    wildcards_of: dict[
        str, str
    ] = {}  # jobid -> wildcards, from the job's start block (error blocks omit them)
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        started = re.match(r"^(?:local)?rule ([^:\s]+):\s*$", line)
        m = re.match(r"^Error in (?:rule|group job) ([^:]+):\s*$", line)
        restart = re.match(r"^Trying to restart job (\d+)\.", line)
        if started or m:
            block = {
                "rule": (started or m).group(1),
                "jobid": None,
                "wildcards": "",
                "logs": [],
                "message": "",
            }
            i += 1
            while i < len(lines) and lines[i].startswith("    "):
                key, _, value = lines[i].strip().partition(": ")
                if key == "jobid":
                    block["jobid"] = value.strip()
                elif key == "wildcards":
                    block["wildcards"] = value.strip()
                elif key == "log":
                    value = value.split(" (check log file(s)")[0]
                    block["logs"] = [p.strip() for p in value.split(",") if p.strip()]
                elif key == "message" and value.strip() not in ("", "None"):
                    block["message"] = value.strip()
                i += 1
            if started:
                if block["jobid"] and block["wildcards"]:
                    wildcards_of[block["jobid"]] = block["wildcards"]
                continue
            jid = block["jobid"] or f"?{len(order)}"
            if not block["wildcards"]:
                block["wildcards"] = wildcards_of.get(jid, "")
            if jid not in last_error:
                order.append(jid)
            last_error[jid] = block
            continue
        if restart:
            jid = restart.group(1)
            if jid in last_error:
                del last_error[jid]
                order.remove(jid)
            out["retried"] += 1
        i += 1
    out["failed"] = [last_error[j] for j in order if j in last_error]
    return out


def _log_files(log_path) -> list[str]:
    """Snakemake hands the hooks its log file, as a path or a list of paths (several log handlers)."""
    if not log_path:
        return []
    if isinstance(log_path, (list, tuple)):
        return [str(p) for p in log_path if p]
    return [str(log_path)]


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


RUN_STATUS = Path("results/registry/run_status.json")


def champions_changed(workdir: Path, since: float) -> dict[str, dict]:
    """{SYMBOL: {side: VIN}} for the symbols whose champion changed in this run, read from the registry's run
    record when it was written at or after `since`; {} without one (no registry step ran, or an older
    record)."""
    path = workdir / RUN_STATUS
    try:
        if path.stat().st_mtime < since:
            return {}
    except OSError:
        return {}
    doc = _read_json(path)
    symbols = doc.get("symbols") if isinstance(doc, dict) else None
    if not isinstance(symbols, dict):
        LOG.warning("%s has no 'symbols' mapping; champions changed counted as 0", RUN_STATUS)
        return {}
    return {
        sym: (st.get("champion") if isinstance(st.get("champion"), dict) else {"": st.get("champion")})
        for sym, st in sorted(symbols.items())
        if isinstance(st, dict) and st.get("changed")
    }


def models_summary(workdir: Path, since: float) -> dict:
    """Models written at or after `since` (epoch seconds): stage-1 models trained / skipped (from
    results/stage1/**/metrics.json) and quality-gate verdicts (a {"gate": {"passed": ...}} in the cost-aware
    evaluation results, results/evaluation/**/*.json, or in the metrics themselves). `gated` says how many
    verdicts there were (0: no gates ran in this run)."""
    trained = skipped = passed = gated = 0

    def fresh(paths):
        for f in paths:
            try:
                if f.stat().st_mtime >= since:
                    doc = _read_json(f)
                    if isinstance(doc, dict):
                        yield doc
            except OSError:
                continue

    def verdict(doc):
        nonlocal passed, gated
        gate = doc.get("gate")
        if isinstance(gate, dict) and "passed" in gate:
            gated += 1
            passed += bool(gate["passed"])

    for m in fresh((workdir / "results" / "stage1").glob("**/metrics.json")):
        if m.get("status", "trained") == "trained":
            trained += 1
        else:
            skipped += 1
        verdict(m)
    for doc in fresh((workdir / "results" / "evaluation").glob("**/*.json")):
        verdict(doc)
    return {"trained": trained, "skipped": skipped, "passed": passed, "gated": gated}


def _state_path(workdir: Path) -> Path:
    return workdir / STATE_FILE


def record_start(workdir: Path) -> dict:
    state = {"started": time.time()}
    try:
        p = _state_path(workdir)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, sort_keys=True))
        tmp.replace(p)
    except OSError as exc:
        LOG.warning("could not record the run start (%s); the summary will count every model", exc)
    return state


def load_start(workdir: Path) -> dict:
    state = _read_json(_state_path(workdir))
    return state if isinstance(state, dict) else {"started": 0.0}


# ---- the messages ------------------------------------------------------------------------------------------
def _header(event: str, context: Mapping[str, Any]) -> str:
    env = context.get("env", "?")
    return f"swingflow [{env}] {event} on {context.get('host') or socket.gethostname()}"


def _elapsed(start: float) -> str:
    if not start:
        return "?"
    return str(dt.timedelta(seconds=round(time.time() - start)))


def start_message(context: Mapping[str, Any]) -> tuple[str, dict]:
    lines = [_header("started", context)]
    if context.get("symbols"):
        syms = list(context["symbols"])
        lines.append(
            f"symbols ({len(syms)}): {', '.join(syms[:MAX_LISTED])}{' …' if len(syms) > MAX_LISTED else ''}"
        )
    for key in ("windows", "targets", "jobs", "profile"):
        if context.get(key) not in (None, "", []):
            value = context[key]
            lines.append(f"{key}: {len(value) if isinstance(value, (list, tuple)) else value}")
    return "\n".join(lines), {"event": "start", **_plain(context)}


def success_message(context: Mapping[str, Any], start: dict, log_path, workdir: Path) -> tuple[str, dict]:
    models = models_summary(workdir, float(start.get("started") or 0.0))
    changed = champions_changed(workdir, float(start.get("started") or 0.0))
    jobs = failed_jobs(log_path)
    passed = f"{models['passed']} of {models['gated']}" if models["gated"] else "n/a (no quality gates ran)"
    lines = [
        _header("finished", context),
        f"elapsed: {_elapsed(float(start.get('started') or 0.0))}",
        f"models trained: {models['trained']} (skipped: {models['skipped']})",
        f"passed quality gates: {passed}",
        f"champions changed: {len(changed)}",
    ]
    lines += [
        f"  {sym}: " + ", ".join(f"{side} {vin}" if side else str(vin) for side, vin in sorted(champ.items()))
        for sym, champ in list(changed.items())[:MAX_LISTED]
    ]
    if len(changed) > MAX_LISTED:
        lines.append(f"  … and {len(changed) - MAX_LISTED} more")
    lines.append(f"failures: {len(jobs['failed'])} (attempts retried: {jobs['retried']})")
    payload = {
        "event": "success",
        **_plain(context),
        "models": models,
        "elapsed_s": _since(start),
        "champions_changed": changed,
        "failures": jobs["failed"],
        "retried": jobs["retried"],
        "log": _log_files(log_path),
    }
    return "\n".join(lines), payload


def error_message(context: Mapping[str, Any], start: dict, log_path) -> tuple[str, dict]:
    jobs = failed_jobs(log_path)
    lines = [_header("FAILED", context), f"elapsed: {_elapsed(float(start.get('started') or 0.0))}"]
    if jobs["failed"]:
        lines.append(f"failed jobs: {len(jobs['failed'])} (attempts retried before: {jobs['retried']})")
        for job in jobs["failed"][:MAX_LISTED]:
            what = job["rule"] + (f" [{job['wildcards']}]" if job["wildcards"] else "")
            logs = ", ".join(job["logs"]) or "no log file"
            lines.append(f"- {what}: {logs}")
            if job["message"]:
                lines.append(f"  {job['message'][:300]}")
        if len(jobs["failed"]) > MAX_LISTED:
            lines.append(f"… and {len(jobs['failed']) - MAX_LISTED} more")
    else:
        lines.append("the workflow stopped before or outside a job (see the Snakemake log)")
    lines.append(f"snakemake log: {', '.join(_log_files(log_path)) or '?'}")
    payload = {
        "event": "error",
        **_plain(context),
        "elapsed_s": _since(start),
        "failures": jobs["failed"],
        "retried": jobs["retried"],
        "log": _log_files(log_path),
    }
    return "\n".join(lines), payload


def _since(start: dict) -> float | None:
    return round(time.time() - float(start["started"]), 1) if start.get("started") else None


def _plain(context: Mapping[str, Any]) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in context.items()}


# ---- delivery ----------------------------------------------------------------------------------------------
def _redact(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "<redacted>")
    return text


def _post_json(url: str, body: dict, timeout: float, secrets: list[str], channel: str) -> str:
    data = json.dumps(body).encode()
    last = ""
    for attempt in range(1, ATTEMPTS + 1):
        req = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "swingflow-notify"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                resp.read(65536)
                return "sent"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if 400 <= exc.code < 500 and exc.code != 429:
                break  # a bad token or chat id does not get better by retrying
        except Exception as exc:  # noqa: BLE001 - delivery must never raise
            last = f"{type(exc).__name__}: {exc}"
        if attempt < ATTEMPTS:
            time.sleep(1.0)
    msg = _redact(f"{channel}: not delivered ({last})", secrets)
    LOG.warning(msg)
    return f"failed: {_redact(last, secrets)}"


def send_telegram(
    text: str, token: str, chat_id: str, api: str | None = None, timeout: float = TIMEOUT_S
) -> str:
    base = (api or TELEGRAM_API).rstrip("/")
    if len(text) > TELEGRAM_LIMIT:
        text = text[: TELEGRAM_LIMIT - 2] + "\n…"
    body = {"chat_id": chat_id, "text": text, "disable_web_page_preview": True}
    return _post_json(f"{base}/bot{token}/sendMessage", body, timeout, [token], "telegram")


def send_webhook(payload: dict, url: str, timeout: float = TIMEOUT_S) -> str:
    return _post_json(url, payload, timeout, [url], "webhook")


def deliver(
    text: str,
    payload: dict,
    settings: Mapping[str, Any] | None,
    environ: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT_S,
) -> dict:
    """Send to every enabled channel; returns {channel: "sent" | "skipped: why" | "failed: why"}. Never
    raises."""
    env = os.environ if environ is None else environ
    settings = settings or {}
    report: dict[str, str] = {}
    if str(env.get("SWINGFLOW_NOTIFY", "")).lower() in ("0", "off", "false", "no"):
        return {"telegram": "skipped: SWINGFLOW_NOTIFY=off", "webhook": "skipped: SWINGFLOW_NOTIFY=off"}
    if settings.get("telegram"):
        token, chat = env.get("SWINGFLOW_TELEGRAM_TOKEN"), env.get("SWINGFLOW_TELEGRAM_CHAT_ID")
        if token and chat:
            report["telegram"] = send_telegram(text, token, chat, env.get("SWINGFLOW_TELEGRAM_API"), timeout)
        else:
            report["telegram"] = "skipped: SWINGFLOW_TELEGRAM_TOKEN / SWINGFLOW_TELEGRAM_CHAT_ID not set"
    else:
        report["telegram"] = "skipped: disabled in config"
    var = settings.get("webhook_url_env")
    if var:
        url = env.get(var)
        report["webhook"] = (
            send_webhook({**payload, "text": text}, url, timeout) if url else f"skipped: {var} not set"
        )
    else:
        report["webhook"] = "skipped: disabled in config"
    return report


# ---- the hooks ---------------------------------------------------------------------------------------------
def run_context(cfg: Mapping[str, Any]) -> dict:
    """What the messages say about the run, from the resolved configuration (no secrets in it)."""

    return {
        "env": cfg["env"]["name"],
        "symbols": list(cfg["universe"]["symbols"]),
        "windows": list(cfg["targets"]["windows"]),
        "targets": [g["id"] for g in target_grid(cfg["targets"])],
    }


def _hook(event: str, log, settings, context, workdir) -> dict:
    try:
        context = dict(context or {})
        context.setdefault("host", socket.gethostname())
        wd = Path(workdir)
        if event == "start":
            record_start(wd)
            text, payload = start_message(context)
        elif event == "success":
            text, payload = success_message(context, load_start(wd), log, wd)
        else:
            text, payload = error_message(context, load_start(wd), log)
        report = deliver(text, payload, settings)
        LOG.info("%s notification: %s", event, ", ".join(f"{k} {v}" for k, v in sorted(report.items())))
        return report
    except Exception as exc:  # noqa: BLE001 - a notification never fails the workflow
        LOG.warning("%s notification failed: %s: %s", event, type(exc).__name__, exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


def on_start(log=None, settings=None, context=None, workdir=".") -> dict:
    return _hook("start", log, settings, context, workdir)


def on_success(log=None, settings=None, context=None, workdir=".") -> dict:
    return _hook("success", log, settings, context, workdir)


def on_error(log=None, settings=None, context=None, workdir=".") -> dict:
    return _hook("error", log, settings, context, workdir)


def main(argv: list[str] | None = None) -> int:
    """By hand: python -m workflow_scripts.ops.notify {start,success,error} [--log LOG] [--telegram] [--webhook-env VAR]"""  # noqa: E501
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("event", choices=["start", "success", "error"])
    ap.add_argument("--log", default=None, help="Snakemake log of the run (.snakemake/log/*.snakemake.log)")
    ap.add_argument("--env", default="manual")
    ap.add_argument("--telegram", action="store_true")
    ap.add_argument("--webhook-env", default="SWINGFLOW_WEBHOOK_URL")
    a = ap.parse_args(argv)
    settings = {"telegram": a.telegram, "webhook_url_env": a.webhook_env}
    context = {"env": a.env}
    report = _hook(a.event, a.log, settings, context, ".")
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
