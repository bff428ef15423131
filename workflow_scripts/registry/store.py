"""The model registry: one folder per production model, an index, champions per symbol and side, archive,
cleanup and deployment slots. docs/REGISTRY.md describes the layout, the index schema and the rules.

Layout under `registry_dir` (all JSON canonical, all writes atomic via workflow_scripts.artifacts):

    index.json                     VIN -> entry (version, symbol, target, window, side, model type, grade,
                                   gate, dependencies, created, folder, status); lineages -> latest version
                                   per symbol x side
    models/<VIN>/                  the production folder, copied and verified (sha256.txt covers every file)
    champions/<SYMBOL>.json        per side: champion VIN, previous champions (rollback stack), challengers
    champions/roster.json          every current champion in one list
    runs/<run>/status.json         what one workflow run registered / promoted, per symbol
    summary/<run>/engine_summary.json
    archive/<VIN>/                 copies of the best models + metadata.json; archive/archive_registry.json
    deployments/model_<N>          symlink -> deployments/.slots/model_<N>-<stamp>/ (model files +
                                   deployment_info.json); swapping the link is one atomic rename
    .lock                          filelock serialising every read-modify-write of the files above

The production-folder contract (sha256.txt, metadata files, read_model_meta, load_folder) is models/folder.py.
Every read-modify-write holds the lock; every file is replaced atomically, so several Snakemake jobs finishing
at once neither lose an update nor leave a half-written index. Many changes at once (a run's registration,
registry/runs.py) go through `transaction`: the files are read once, changed in memory and written once at
its end, all or nothing. Loading a model verifies its hashes first.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from workflow_scripts import artifacts
from workflow_scripts.evaluation.evidence import EVIDENCE_FILE
from workflow_scripts.evaluation.metrics import macro_average_precision
from workflow_scripts.lifecycle import compare as cmp
from workflow_scripts.models.folder import (
    REFIT_DIR,
    SIDES,  # noqa: F401  (the folder contract's; read as reg.SIDES by ops/cli.py)
    IntegrityError,
    LoadedModel,
    RegistryError,
    check_symbol,
    check_vin,
    feature_hash,
    finite,
    folder_files,
    identity_hashes,
    load_folder,
    model_file_of,
    normalise_model_type,
    read_model_meta,
    verify_folder,
)

SCHEMA = 1
STATUSES = ("registered", "champion", "challenger", "rejected", "retired")
LOCK_TIMEOUT_S = 120


# ---- small helpers -----------------------------------------------------------------------------------------
def utc_now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse_time(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(str(text))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)  # a naive time in the index is UTC


def parse_semver(text: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", str(text))
    if not m:
        raise RegistryError(f"not a semantic version: {text!r} (expected MAJOR.MINOR.PATCH)")
    return int(m[1]), int(m[2]), int(m[3])


def format_semver(v: Sequence[int]) -> str:
    return f"{v[0]}.{v[1]}.{v[2]}"


def paths(registry_dir: str | os.PathLike) -> dict[str, Path]:
    root = Path(registry_dir)
    return {
        "root": root,
        "index": root / "index.json",
        "models": root / "models",
        "champions": root / "champions",
        "roster": root / "champions" / "roster.json",
        "runs": root / "runs",
        "summary": root / "summary",
        "archive": root / "archive",
        "deployments": root / "deployments",
        "logs": root / "logs",
        "lock": root / ".lock",
    }


def registry_lock(registry_dir: str | os.PathLike) -> FileLock | contextlib.nullcontext:
    """The one lock of a registry (a plain file lock: works across processes on one host and on NFS v4).
    Inside a transaction() of the same registry the lock is already held: nothing more to take."""
    if _transaction_of(registry_dir) is not None:
        return contextlib.nullcontext()
    lock_path = paths(registry_dir)["lock"]
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_path), timeout=LOCK_TIMEOUT_S)


# ---- one change of many files: the transaction -------------------------------------------------------------
class _Transaction:
    """A registry's JSON files (index, champions, run status, summaries) read once and changed in memory, and
    the model folders put in place during the change (with what they replaced, kept aside until the end).
    A read inside the transaction returns the transaction's document itself: what the module's
    read-modify-write functions change and write back is what the transaction writes at its end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.docs: dict[str, Any] = {}  # path relative to root -> document (None: no such file)
        self.dirty: dict[str, None] = {}  # written paths, in order
        self.roster_dirty = False
        self.moved: list[tuple[Path, Path | None]] = []  # (model folder put in place, what it replaced)

    def read(self, rel: str, load: Callable[[Path], Any]) -> Any:
        if rel not in self.docs:
            path = self.root / rel
            self.docs[rel] = load(path) if path.is_file() else None
        return self.docs[rel]

    def write(self, rel: str, doc: Any) -> None:
        self.docs[rel] = doc
        self.dirty[rel] = None

    def put_folder(self, tmp: Path, dest: Path) -> None:
        """Rename `tmp` to `dest`; a folder already at `dest` is moved aside, restored if the change fails."""
        aside = None
        if dest.exists():
            aside = dest.with_name(f".{dest.name}.{os.getpid()}.{len(self.moved)}.replaced")
            if aside.exists():
                shutil.rmtree(aside)
            os.rename(dest, aside)
        os.rename(tmp, dest)
        self.moved.append((dest, aside))

    def undo_folders(self) -> None:
        for dest, aside in reversed(self.moved):
            shutil.rmtree(dest, ignore_errors=True)
            if aside is not None:
                os.rename(aside, dest)
        self.moved = []

    def commit(self, registry_dir) -> None:
        """Every written document (and the roster, when a champion changed) replaced on disk as one change:
        when a write fails, the files already replaced get their old bytes back and the model folders put in
        place are taken out again, so the registry is as it was before the transaction."""
        writes = [(self.root / rel, self.docs[rel]) for rel in self.dirty]
        if self.roster_dirty:
            writes.append(
                (paths(self.root)["roster"], {"updated": utc_now(), "champions": roster(registry_dir)})
            )
        try:
            _replace_all(writes)
        except Exception as exc:
            folders = len(self.moved)
            self.undo_folders()
            raise RegistryError(
                f"{self.root}: writing the registry's files failed ({exc}); nothing of this change was kept: "
                f"the {len(writes)} file(s) and {folders} model folder(s) are as they were before it"
            ) from exc
        for _, aside in self.moved:
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)


_TRANSACTIONS: contextvars.ContextVar[dict[Path, _Transaction] | None] = contextvars.ContextVar(
    "registry_transactions", default=None
)


def _transaction_of(registry_dir) -> _Transaction | None:
    open_ = _TRANSACTIONS.get()
    return open_.get(Path(registry_dir).resolve()) if open_ else None


@contextlib.contextmanager
def transaction(registry_dir: str | os.PathLike) -> Iterator[None]:
    """Many registrations and decisions as one change of the registry, under the lock held throughout: the
    index, champions and run files are read once, changed in memory and written once at the end (the roster
    once too), so registering N folders costs O(N), not N rewrites of a growing index. All or nothing: when
    the block raises, or a write at the end fails, no file of the registry changes and the model folders the
    block put in place are taken out again (what they replaced is restored). Inside it every function of this
    module works on the transaction's state; a transaction of the same registry nested in it joins it."""
    if _transaction_of(registry_dir) is not None:
        yield
        return
    root = Path(registry_dir).resolve()
    with registry_lock(registry_dir):
        txn = _Transaction(root)
        token = _TRANSACTIONS.set({**(_TRANSACTIONS.get() or {}), root: txn})
        try:
            try:
                yield
            except BaseException:
                txn.undo_folders()
                raise
            txn.commit(registry_dir)
        finally:
            _TRANSACTIONS.reset(token)


def _replace_all(writes: Sequence[tuple[Path, Any]]) -> None:
    """Write each (path, JSON document) atomically, in order; when one fails, put back the old bytes of those
    already written (or remove them when they are new) and raise the failure. A callable document is built
    when its turn comes (after the files before it are written)."""
    old: dict[Path, bytes | None] = {}
    try:
        for path, doc in writes:
            old.setdefault(path, path.read_bytes() if path.is_file() else None)
            artifacts.write_json(path, doc() if callable(doc) else doc)
    except BaseException:
        for path, data in old.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                artifacts.write_bytes(path, data)
        raise


def _read_doc(registry_dir, rel: str) -> Any:
    """A JSON file of the registry (path relative to its root), None when there is none."""
    txn = _transaction_of(registry_dir)
    if txn is not None:
        return txn.read(rel, artifacts.read_json)
    path = Path(registry_dir) / rel
    return artifacts.read_json(path) if path.is_file() else None


def _write_doc(registry_dir, rel: str, doc: Any) -> None:
    txn = _transaction_of(registry_dir)
    if txn is not None:
        txn.write(rel, doc)
    else:
        artifacts.write_json(Path(registry_dir) / rel, doc)


# ---- index -------------------------------------------------------------------------------------------------
INDEX_FILE = "index.json"


def _empty_index() -> dict:
    return {"schema": SCHEMA, "models": {}, "lineages": {}}


def _load_index(path: Path) -> dict:
    try:
        index = artifacts.read_json(path)
    except json.JSONDecodeError as exc:
        raise RegistryError(f"{path}: not valid JSON ({exc})") from exc
    if index.get("schema") != SCHEMA:
        raise RegistryError(f"{path}: schema {index.get('schema')!r}, this swingflow reads schema {SCHEMA}")
    return index


def read_index(registry_dir: str | os.PathLike) -> dict:
    """The index (an empty one when the registry has none). Inside a transaction: read once, then the
    transaction's copy."""
    txn = _transaction_of(registry_dir)
    if txn is not None:
        index = txn.read(INDEX_FILE, _load_index)
        if index is None:
            index = _empty_index()
            txn.docs[INDEX_FILE] = index
        return index
    path = paths(registry_dir)["index"]
    return _load_index(path) if path.is_file() else _empty_index()


def _write_index(registry_dir, index: dict) -> None:
    _write_doc(registry_dir, INDEX_FILE, index)


def get_entry(registry_dir, vin: str, index: dict | None = None) -> dict:
    index = read_index(registry_dir) if index is None else index
    entry = index["models"].get(vin)
    if entry is None:
        raise RegistryError(f"no model {vin!r} in {paths(registry_dir)['index']}")
    return entry


def list_models(
    registry_dir,
    *,
    symbol: str | None = None,
    target: str | None = None,
    model_type: str | None = None,
    grade: str | None = None,
    side: str | None = None,
    status: str | None = None,
) -> list[dict]:
    """Index entries matching every given filter, newest first. `grade` matches exactly ('A' is not 'A-')."""
    mt = normalise_model_type(model_type) if model_type else None
    out = []
    for e in read_index(registry_dir)["models"].values():
        if (
            (symbol and e["symbol"] != symbol)
            or (target and e["target"] != target)
            or (mt and e["model_type"] != mt)
            or (grade and e.get("grade") != grade)
            or (side and e["side"] != side)
            or (status and e.get("status") != status)
        ):
            continue
        out.append(e)
    return sorted(out, key=lambda e: (e["created"], e["vin"]), reverse=True)


def lineage_key(symbol: str, side: str) -> str:
    return f"{symbol}/{side}"


# ---- the RL line's folders (agents/package.py, docs/AGENTS.md) ---------------------------------------------
AGENT_SIDE = "both"  # an agent holds one position in [-1, 1]: long and short, not a (symbol, high/low) class
AGENT_TARGET = "agent"


def is_agent(entry: Mapping[str, Any]) -> bool:
    """A folder or index entry of the RL line (CNN-LSTM, agent, hybrid, agent ensemble)."""
    return entry.get("side") == AGENT_SIDE


def lineage_of(meta: Mapping[str, Any]) -> str:
    """The version lineage: symbol x side; the RL line's models of a coin have one lineage per model type
    (`SYMBOL/both/agent`, `.../cnn_lstm`), so registering a CNN-LSTM next to its agents bumps no version."""
    key = lineage_key(meta["symbol"], meta["side"])
    return f"{key}/{meta['model_type']}" if is_agent(meta) else key


def agent_meta(folder: str | os.PathLike) -> dict:
    """read_model_meta for an RL line folder (config.json side "both", target "agent"): the same identity
    keys, plus `dependencies` {data_version, encoder_version, cnn_lstm (the VIN of the extractor whose
    embeddings it observes), models (config.json `dependencies`: for a hybrid the production folders' VINs
    and sha256s)} and `last_bar` (paper trading starts after it)."""
    folder = Path(folder)
    cfg = artifacts.read_json(folder / "config.json")
    metrics = artifacts.read_json(folder / "metrics.json")
    feats = artifacts.read_json(folder / "features.json")
    if cfg.get("target") != AGENT_TARGET:
        raise RegistryError(
            f"{folder / 'config.json'}: side {AGENT_SIDE!r} is the RL line's, expected target "
            f"{AGENT_TARGET!r}, got {cfg.get('target')!r}"
        )
    missing = [k for k in ("symbol", "window", "model_type") if k not in cfg]
    if missing:
        raise RegistryError(f"{folder / 'config.json'}: missing key(s) {missing}")
    if not metrics.get("vin"):
        raise RegistryError(f"{folder / 'metrics.json'}: missing key 'vin'")
    model_type, model_name = model_file_of(folder)
    if normalise_model_type(cfg["model_type"]) != model_type:
        raise RegistryError(
            f"{folder}: config.json says model_type {cfg['model_type']!r} but the model file is {model_name}"
        )
    grade = metrics.get("grade")
    return {
        "vin": check_vin(str(metrics["vin"])),
        "symbol": check_symbol(str(cfg["symbol"])),
        "window": int(cfg["window"]),
        "side": AGENT_SIDE,
        "target": AGENT_TARGET,
        "model_type": model_type,
        "model_file": model_name,
        "grade": None if grade is None else str(grade.get("grade") if isinstance(grade, Mapping) else grade),
        "gate_profile": (metrics.get("gate") or {}).get("profile"),
        "gate_passed": bool((metrics.get("gate") or {}).get("passed", False)),
        "score": finite(metrics.get("score")),
        "feature_count": len(feats["features"]),
        "feature_hash": feature_hash(feats["features"]),
        "last_bar": cfg.get("last_bar"),
        "dependencies": {
            "data_version": None,
            "encoder_version": None,
            "cnn_lstm": cfg.get("cnn_lstm"),
            "models": cfg.get("dependencies") or {},
        },
    }


def model_meta(folder: str | os.PathLike) -> dict:
    """The identity of a folder to register: models/folder.read_model_meta, or agent_meta for the RL line."""
    cfg = artifacts.read_json(Path(folder) / "config.json")
    return agent_meta(folder) if cfg.get("side") == AGENT_SIDE else read_model_meta(folder)


def next_version(
    lineage: Mapping[str, Any] | None, meta: Mapping[str, Any], model_sha: str
) -> tuple[str, str]:
    """(version, reason). Rules (per lineage symbol x side), compared with the lineage's latest registration:
    major - model type, target definition (target id or window) or feature set changed (or first model:
    1.0.0); minor - same definition, different model artifact or data version (a retrain with new
    data/params); patch - identical model artifact and data version (re-registration / metadata-only
    change)."""
    if not lineage:
        return "1.0.0", "first model of the lineage"
    ma, mi, pa = parse_semver(lineage["latest"])
    changes = [k for k in ("model_type", "target", "window", "feature_hash") if lineage.get(k) != meta.get(k)]
    if changes:
        return format_semver((ma + 1, 0, 0)), "major: changed " + ", ".join(changes)
    if (
        lineage.get("model_sha256") != model_sha
        or lineage.get("data_version") != meta["dependencies"]["data_version"]
    ):
        return format_semver((ma, mi + 1, 0)), "minor: retrained (new model artifact or data version)"
    return format_semver((ma, mi, pa + 1)), "patch: identical model artifact, metadata re-registration"


def _copy_tree(src: Path, dst_parent: Path, prefix: str) -> Path:
    dst_parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{prefix}.", suffix=".tmp", dir=dst_parent))
    for name in folder_files(src):
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / name, tmp / name)
    return tmp


def read_evidence(folder: str | os.PathLike, vin: str) -> cmp.Evidence | None:
    """The validation evidence of a model folder (evaluation/evidence.py), None when it has none."""
    path = Path(folder) / EVIDENCE_FILE
    if not path.is_file():
        return None
    return cmp.evidence_from_document(vin, artifacts.read_json(path))


def validation_summary(folder: str | os.PathLike, vin: str) -> dict | None:
    """What the index keeps of a folder's validation evidence: bars, trades, annualised per-bar Sharpe and
    the gate verdict on validation (None without evidence: a folder written before evidence existed)."""
    path = Path(folder) / EVIDENCE_FILE
    if not path.is_file():
        return None
    doc = artifacts.read_json(path)
    gate = doc.get("gate") or {}
    return cmp.evidence_summary(cmp.evidence_from_document(vin, doc)) | {
        "gate_passed": gate.get("passed"),
        "gate_profile": gate.get("profile"),
    }


NO_EVIDENCE = "no validation evidence"


def eligibility(entry: Mapping[str, Any]) -> tuple[bool, str | None, str]:
    """(passed, gate profile, basis): the gate verdict on VALIDATION, from the model's validation evidence. A
    folder without evidence (registered by hand, or written before evidence existed) is not eligible: its only
    verdict, the gate of record, was taken on the test segment, which never makes a champion."""
    val = entry.get("validation") or {}
    if val.get("gate_passed") is not None:
        return bool(val["gate_passed"]), val.get("gate_profile"), "validation"
    return False, entry.get("gate_profile"), NO_EVIDENCE


def load_evidence(registry_dir, vin: str) -> cmp.Evidence | None:
    """A registered model's validation evidence."""
    entry = get_entry(registry_dir, vin)
    return read_evidence(paths(registry_dir)["root"] / entry["folder"], vin)


@dataclass
class Staged:
    """A folder to register, verified and copied beside models/ (`tmp`), not yet in the index: the slow part
    of a registration (copy, hashes, evidence), done before the lock is taken."""

    folder: Path
    hashes: dict[str, str]
    meta: dict
    validation: dict | None
    tmp: Path


def stage(
    registry_dir: str | os.PathLike,
    folder: str | os.PathLike,
    *,
    data_version: str | None = None,
    encoder_version: str | None = None,
) -> Staged:
    """Verify `folder` (sha256.txt), read its identity and copy it to a temporary folder under models/
    (verified again); add_staged puts it in place. Call discard() on it when it was not added."""
    folder = Path(folder)
    hashes = verify_folder(folder)
    meta = model_meta(folder)
    if data_version is not None:
        meta["dependencies"]["data_version"] = data_version
    if encoder_version is not None:
        meta["dependencies"]["encoder_version"] = encoder_version
    tmp = _copy_tree(folder, paths(registry_dir)["models"], meta["vin"])
    try:
        verify_folder(tmp)
        validation = validation_summary(folder, meta["vin"])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Staged(folder, hashes, meta, validation, tmp)


def discard(staged: Staged) -> None:
    """Remove the temporary copy of a staged folder that was not added (nothing when it was)."""
    if staged.tmp.exists():
        shutil.rmtree(staged.tmp, ignore_errors=True)


def add_staged(
    registry_dir: str | os.PathLike,
    staged: Staged,
    *,
    run: str | None = None,
    created: str | None = None,
    keep_identical: bool = False,
) -> dict:
    """Put a staged folder in place as models/<VIN>/ and add it to the index (register's rules); return its
    index entry. Inside a transaction of `registry_dir` (the caller's, or one of its own)."""
    if _transaction_of(registry_dir) is None:
        with transaction(registry_dir):
            return add_staged(registry_dir, staged, run=run, created=created, keep_identical=keep_identical)
    folder, hashes, meta = staged.folder, staged.hashes, staged.meta
    vin = meta["vin"]
    model_sha = hashes[meta["model_file"]]
    index = read_index(registry_dir)
    key = lineage_of(meta)
    cnn = meta["dependencies"].get("cnn_lstm")
    if cnn is not None:  # an agent depends on its extractor: registered first, recorded by sha256
        if cnn not in index["models"]:
            raise RegistryError(f"{folder}: register its CNN-LSTM {cnn} first (an agent's dependency)")
        meta["dependencies"]["cnn_lstm_sha256"] = index["models"][cnn]["model_sha256"]
    lineage = index["lineages"].get(key)
    old = index["models"].get(vin)
    same = old is not None and identity_hashes(old.get("files", {})) == identity_hashes(hashes)
    if same and keep_identical:
        return old
    if old is not None:
        if old["model_sha256"] != model_sha:
            raise RegistryError(
                f"VIN {vin} is already registered with a different model "
                f"(sha256 {old['model_sha256'][:12]} vs {model_sha[:12]}); a VIN names one model"
            )
        ma, mi, pa = parse_semver(lineage["latest"]) if lineage else (1, 0, 0)
        version, reason = format_semver((ma, mi, pa + 1)), "patch: re-registration of identical artifacts"
    else:
        version, reason = next_version(lineage, meta, model_sha)
    # the folder of a re-registration, or an orphan from a crash before the index was written, is replaced
    _transaction_of(registry_dir).put_folder(staged.tmp, paths(registry_dir)["models"] / vin)
    entry = {
        **meta,
        "version": version,
        "version_reason": reason,
        "lineage": key,
        "created": created or utc_now(),
        "folder": f"models/{vin}",
        "source": str(folder),
        "model_sha256": model_sha,
        "files": hashes,
        "run": run,
        "validation": staged.validation,
        "status": (old or {}).get("status", "registered"),
        "archived": (old or {}).get("archived", False),
        "history": [
            *((old or {}).get("history", [])),
            *([{"version": old["version"], "registered": old["created"]}] if old else []),
        ],
    }
    index["models"][vin] = entry
    index["lineages"][key] = {
        "latest": version,
        "vin": vin,
        "model_type": meta["model_type"],
        "target": meta["target"],
        "window": meta["window"],
        "feature_hash": meta["feature_hash"],
        "model_sha256": model_sha,
        "data_version": meta["dependencies"]["data_version"],
    }
    _write_index(registry_dir, index)
    if run:
        _update_run_status(registry_dir, run, meta["symbol"], {"registered": [vin]})
    return entry


def register(
    registry_dir: str | os.PathLike,
    folder: str | os.PathLike,
    *,
    run: str | None = None,
    data_version: str | None = None,
    encoder_version: str | None = None,
    created: str | None = None,
    keep_identical: bool = False,
) -> dict:
    """Copy a verified production folder to models/<VIN>/ and add it to the index; return its index entry.

    Safe when several processes register at once: the copy goes to a temporary folder first (stage), then,
    under the lock, the index is re-read, the version decided, the folder renamed into place and the index
    replaced (add_staged, in a transaction: the caller's when it has one, so many registrations write the
    index once). Registering the same VIN again with identical files is a patch bump (metadata refresh); the
    same VIN with a different model is refused (a VIN names one model). With `keep_identical` a VIN already
    registered with these files (VOLATILE_FILES aside) is left alone (no patch bump, nothing written): what a
    workflow rerun with nothing new needs."""
    staged = stage(registry_dir, folder, data_version=data_version, encoder_version=encoder_version)
    try:
        return add_staged(registry_dir, staged, run=run, created=created, keep_identical=keep_identical)
    finally:
        discard(staged)


def verify_registry(registry_dir) -> list[dict]:
    """Verify every registered model folder; [{vin, ok, error}] (never raises for one bad model)."""
    out = []
    for vin, entry in sorted(read_index(registry_dir)["models"].items()):
        try:
            hashes = verify_folder(paths(registry_dir)["root"] / entry["folder"])
            if hashes != entry["files"]:
                changed = sorted(
                    k for k in set(hashes) | set(entry["files"]) if hashes.get(k) != entry["files"].get(k)
                )
                raise IntegrityError(f"{entry['folder']}: sha256.txt differs from the index for {changed}")
            out.append({"vin": vin, "ok": True, "error": None})
        except RegistryError as exc:
            out.append({"vin": vin, "ok": False, "error": str(exc)})
    return out


def load_model(registry_dir, vin: str, model: str = "evaluated") -> LoadedModel:
    """Load a registered model; its files are checked against sha256.txt AND the hashes recorded at
    registration. `model`: "evaluated" (scoring, benchmarks) or "deployed" (the refit: predictions, paper
    trading), models/folder.load_folder."""
    entry = get_entry(registry_dir, vin)
    folder = paths(registry_dir)["root"] / entry["folder"]
    loaded = load_folder(folder, vin, entry, model=model)
    recorded = entry.get("files") or {}
    for name, sha in recorded.items():
        actual = artifacts.sha256_file(folder / name) if (folder / name).is_file() else "<missing>"
        if actual != sha:
            raise IntegrityError(
                f"{folder / name}: sha256 mismatch with the index (expected {sha}, actual {actual})"
            )
    return loaded


# ---- champion / challenger ---------------------------------------------------------------------------------
Scorer = Callable[[LoadedModel], float]


def score_models(
    registry_dir, vins: Sequence[str], scorer: Scorer | None = None, scores: Mapping[str, float] | None = None
) -> dict[str, float | None]:
    """Score several models on the same data: precomputed `scores` win, else `scorer(loaded_model)`."""
    out: dict[str, float | None] = {}
    for vin in vins:
        if scores is not None and vin in scores:
            out[vin] = finite(scores[vin])
        elif scorer is not None:
            out[vin] = finite(scorer(load_model(registry_dir, vin)))
        else:
            raise RegistryError(f"no score for {vin}: pass precomputed scores or a scorer")
    return out


def macro_ap_scorer(frame, labels, rows: np.ndarray | None = None) -> Scorer:
    """A scorer for a common recent test window: macro one-vs-rest average precision of the model's
    probabilities on `frame` (feature table) against `labels` (codes 0/1/2; other codes ignored)."""
    y_all = np.asarray(labels)
    sel = np.isin(y_all, (0, 1, 2)) if rows is None else np.asarray(rows)
    idx = np.flatnonzero(sel) if sel.dtype == bool else sel
    y = y_all[sel]

    def score(
        model: LoadedModel,
    ) -> float:  # whole frame first: a windowed model reads the bars before each row
        return macro_average_precision(y, model.predict_proba(frame)[idx])

    return score


def _champion_path(registry_dir, symbol: str) -> Path:
    return paths(registry_dir)["champions"] / f"{check_symbol(symbol)}.json"


def _champions_rel(symbol: str) -> str:
    return f"champions/{check_symbol(symbol)}.json"


def read_champions(registry_dir, symbol: str) -> dict:
    """champions/<SYMBOL>.json ({"symbol", "sides": {}} when the symbol has none yet)."""
    champs = _read_doc(registry_dir, _champions_rel(symbol))
    return champs if champs is not None else {"symbol": symbol, "sides": {}}


def _write_champions(registry_dir, symbol: str, champs: dict) -> None:
    _write_doc(registry_dir, _champions_rel(symbol), champs)


def _set_status(index: dict, vin: str, status: str) -> None:
    if vin in index["models"]:
        index["models"][vin]["status"] = status


def refusal_of(entry: Mapping[str, Any], gate_profiles: Sequence[str] | None = None) -> str | None:
    """Why a model may not become champion (its gate verdict, or a gate profile that may not promote); None
    when it may."""
    passed, profile, basis = eligibility(entry)
    if basis == NO_EVIDENCE:
        return (
            f"{NO_EVIDENCE} ({EVIDENCE_FILE} missing): the gate of record is a test-segment verdict and "
            "never makes a champion; retrain to get validation evidence"
        )
    if not passed:
        return f"gate {profile!r} not passed ({basis})"
    if gate_profiles is not None and profile not in gate_profiles:
        return f"gate profile {profile!r} may not promote (allowed: {sorted(gate_profiles)})"
    return None


def promote(
    registry_dir,
    vin: str,
    *,
    scorer: Scorer | None = None,
    scores: Mapping[str, float] | None = None,
    margin: float = 0.0,
    run: str | None = None,
    now: str | None = None,
    gate_profiles: Sequence[str] | None = None,
    verdict: Mapping[str, Any] | None = None,
) -> dict:
    """Decide champion or challenger for a registered model (per symbol and side); return the decision.

    With `verdict` (lifecycle/compare.py: {"beats": bool, "reason": {...}}, decided on validation or paper
    bars by the workflow) scores and margin are not used: the newcomer takes over iff verdict["beats"], and
    the reason (measure, bars compared, statistic, p-value, why) is recorded in champions/<SYMBOL>.json.

    A model whose gate failed is 'rejected' (never champion). With no current champion a passing model becomes
    champion. Otherwise both are scored on the same recent bars (precomputed `scores` {vin: score} or a
    `scorer` called on each loaded model) and the newcomer becomes champion only if score_new > score_champion
    + margin; else it is recorded as a challenger. The replaced champion is pushed on the rollback stack. With
    `gate_profiles`, a pass under any other gate profile (say the research-only 'exploratory') is rejected
    too."""
    now = now or utc_now()
    entry = get_entry(registry_dir, vin)
    symbol, side = entry["symbol"], entry["side"]
    decision: dict = {"vin": vin, "symbol": symbol, "side": side, "at": now, "margin": float(margin)}
    refusal = refusal_of(entry, gate_profiles)
    if refusal:
        decision |= {"decision": "rejected", "reason": refusal}
        with registry_lock(registry_dir):
            index = read_index(registry_dir)
            _set_status(index, vin, "rejected")
            _write_index(registry_dir, index)
            if run:
                _update_run_status(registry_dir, run, symbol, {"rejected": [vin]})
        return decision
    current = read_champions(registry_dir, symbol)["sides"].get(side, {}).get("champion")
    if current == vin:
        return decision | {"decision": "champion", "reason": "already champion"}
    if verdict is not None:
        decision |= {"evidence": dict(verdict["reason"])}
        if current is not None:
            decision["previous_champion"] = current
        beats = bool(verdict["beats"])
    elif current is not None:
        sc = score_models(registry_dir, [vin, current], scorer, scores)
        decision |= {"challenger_score": sc[vin], "champion_score": sc[current], "previous_champion": current}
        beats = sc[vin] is not None and (sc[current] is None or sc[vin] > sc[current] + margin)
    else:
        beats = True
    with registry_lock(registry_dir):
        index = read_index(registry_dir)
        champs = read_champions(registry_dir, symbol)
        slot = champs["sides"].setdefault(side, {"champion": None, "previous": [], "challengers": []})
        if (
            slot.get("champion") != current
        ):  # someone promoted meanwhile: decide again against the new champion
            raise RegistryError(
                f"{symbol}/{side}: champion changed while scoring ({current} -> "
                f"{slot.get('champion')}); run promote again"
            )
        if beats:
            if current is not None:
                slot["previous"].append({"vin": current, "until": now})
                _set_status(index, current, "retired")
            slot.update(
                champion=vin, version=entry["version"], since=now, score=decision.get("challenger_score")
            )
            slot["challengers"] = [c for c in slot["challengers"] if c["vin"] != vin]
            _set_status(index, vin, "champion")
            if verdict is not None:
                reason = verdict["reason"].get("why", "")
            else:
                reason = "first champion" if current is None else "beats champion by more than the margin"
            decision |= {"decision": "champion", "reason": reason}
        else:
            slot["challengers"] = [c for c in slot["challengers"] if c["vin"] != vin]
            slot["challengers"].append(
                {
                    "vin": vin,
                    "at": now,
                    "score": decision.get("challenger_score"),
                    "champion_score": decision.get("champion_score"),
                }
                | ({"evidence": decision["evidence"]} if verdict is not None else {})
            )
            _set_status(index, vin, "challenger")
            reason = verdict["reason"].get("why", "") if verdict is not None else None
            decision |= {
                "decision": "challenger",
                "reason": reason or "does not beat the champion by the margin",
            }
        if verdict is not None:
            slot.setdefault("decisions", []).append(
                {k: decision[k] for k in ("vin", "at", "decision", "reason", "evidence")}
                | {"champion_before": current}
            )
            if beats:
                slot["evidence"] = decision["evidence"]
        champs["updated"] = now
        _write_champions(registry_dir, symbol, champs)
        _write_index(registry_dir, index)
        _write_roster(registry_dir, index)
        if run:
            _update_run_status(registry_dir, run, symbol, {decision["decision"]: [vin]})
    return decision


def _restore_previous(index: dict, slot: dict, now: str) -> str | None:
    """In memory: make the newest previous champion of `slot` that is still in the index champion again and
    retire the current one (what rollback and demote do); None when there is no previous champion."""
    previous = [p for p in slot.get("previous", []) if p["vin"] in index["models"]]
    if not previous:
        return None
    back = previous[-1]
    slot["previous"] = previous[:-1]
    retired = slot["champion"]
    _set_status(index, retired, "retired")
    _set_status(index, back["vin"], "champion")
    slot.update(
        champion=back["vin"],
        version=index["models"][back["vin"]]["version"],
        since=now,
        score=None,
        rolled_back_from=retired,
    )
    return back["vin"]


def _commit(registry_dir, symbol: str, champs: dict, index: dict) -> None:
    """Write champions/<SYMBOL>.json, the index and the roster as one change (caller holds the lock): when a
    write fails, the files already replaced get their old bytes back, so a failure leaves the registry as it
    was, never half-changed. Inside a transaction the three go into it (written at its end, all or none)."""
    if _transaction_of(registry_dir) is not None:
        _write_champions(registry_dir, symbol, champs)
        _write_index(registry_dir, index)
        _write_roster(registry_dir, index)
        return
    p = paths(registry_dir)
    writes = (
        (_champion_path(registry_dir, symbol), champs),
        (p["index"], index),
        (p["roster"], lambda: {"updated": utc_now(), "champions": roster(registry_dir)}),
    )
    _replace_all(writes)


def rollback(registry_dir, symbol: str, side: str | None = None, now: str | None = None) -> dict:
    """Make the previous champion of `symbol` (and `side`; optional when the symbol has one side) champion
    again."""
    now = now or utc_now()
    with registry_lock(registry_dir):
        index = read_index(registry_dir)
        champs = read_champions(registry_dir, symbol)
        sides = [s for s, slot in champs["sides"].items() if slot.get("champion")]
        if side is None:
            if len(sides) != 1:
                raise RegistryError(f"{symbol} has champions for sides {sides}: say which with --side")
            side = sides[0]
        slot = champs["sides"].get(side)
        if not slot or not slot.get("champion"):
            raise RegistryError(f"{symbol}/{side} has no champion to roll back")
        retired = slot["champion"]
        back = _restore_previous(index, slot, now)
        if back is None:
            raise RegistryError(
                f"{symbol}/{side}: no previous champion to roll back to (champion {slot['champion']})"
            )
        slot["evidence"] = {"why": f"rolled back from {retired} by an operator"}
        champs["updated"] = now
        _commit(registry_dir, symbol, champs, index)
    return {"symbol": symbol, "side": side, "champion": back, "retired": retired, "at": now}


def demote(
    registry_dir,
    symbol: str,
    side: str,
    verdict: Mapping[str, Any],
    now: str | None = None,
    *,
    vin: str | None = None,
) -> dict | None:
    """Demote the champion of (symbol, side) when `verdict` (lifecycle/compare.demotion on its paper record)
    says so: the previous champion is restored as `rollback` does (or the slot is left without a champion when
    there is none), and the decision with its reason (measure, bars, Sharpe, floor, why) is appended to the
    slot's `decisions` in champions/<SYMBOL>.json, all in one change under the lock. With `vin`, only that
    champion is demoted: when the slot's champion is another model by now (demoted or replaced already),
    nothing is done, so a repeated call never demotes twice. Returns what was done, None when nothing was."""
    if not verdict.get("demote"):
        return None
    now = now or utc_now()
    reason = dict(verdict["reason"])
    with registry_lock(registry_dir):
        index = read_index(registry_dir)
        champs = read_champions(registry_dir, symbol)
        slot = champs["sides"].get(side) or {}
        demoted = slot.get("champion")
        if vin is not None and demoted != vin:
            return None
        if not demoted:
            raise RegistryError(f"{symbol}/{side} has no champion to demote")
        restored = _restore_previous(index, slot, now)
        if restored is None:
            slot.update(champion=None, version=None, since=now, score=None)
            _set_status(index, demoted, "retired")
        why = f"demoted on its paper record: {reason.get('why')}"
        slot["evidence"] = {"why": f"restored after {demoted} was demoted" if restored else why}
        slot.setdefault("decisions", []).append(
            {
                "vin": demoted,
                "at": now,
                "decision": "demoted",
                "reason": why,
                "evidence": reason,
                "champion_before": demoted,
                "champion_after": restored,
            }
        )
        champs["updated"] = now
        _commit(registry_dir, symbol, champs, index)
    return {
        "symbol": symbol,
        "side": side,
        "champion": restored,
        "retired": demoted,
        "at": now,
        "reason": why,
        "evidence": reason,
    }


def roster(registry_dir) -> list[dict]:
    """Every current champion: [{symbol, side, vin, version, grade, window, target, model_type, score,
    since}]."""
    index = read_index(registry_dir)
    out = []
    for champs in _all_champions(registry_dir):
        for side, slot in sorted(champs.get("sides", {}).items()):
            vin = slot.get("champion")
            if not vin:
                continue
            e = index["models"].get(vin, {})
            out.append(
                {
                    "symbol": champs["symbol"],
                    "side": side,
                    "vin": vin,
                    "version": e.get("version"),
                    "grade": e.get("grade"),
                    "window": e.get("window"),
                    "target": e.get("target"),
                    "model_type": e.get("model_type"),
                    "score": e.get("score"),
                    "since": slot.get("since"),
                    "challengers": len(slot.get("challengers", [])),
                    "previous": len(slot.get("previous", [])),
                }
            )
    return out


def _all_champions(registry_dir) -> list[dict]:
    """Every champions/<SYMBOL>.json, by file name (inside a transaction: with the files it wrote)."""
    champ_dir = paths(registry_dir)["champions"]
    names = {p.name for p in champ_dir.glob("*.json")} if champ_dir.is_dir() else set()
    txn = _transaction_of(registry_dir)
    if txn is not None:
        names |= {Path(rel).name for rel in txn.docs if rel.startswith("champions/")}
    names.discard("roster.json")
    docs = (_read_doc(registry_dir, f"champions/{name}") for name in sorted(names))
    return [d for d in docs if d is not None]


def _write_roster(registry_dir, index: dict) -> None:
    """champions/roster.json (inside a transaction: once, at its end)."""
    txn = _transaction_of(registry_dir)
    if txn is not None:
        txn.roster_dirty = True
        return
    artifacts.write_json(
        paths(registry_dir)["roster"], {"updated": utc_now(), "champions": roster(registry_dir)}
    )


# ---- runs and summaries ------------------------------------------------------------------------------------
def _check_run(run: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", str(run)):
        raise RegistryError(f"bad run id {run!r}: letters, digits, '_', '.', '-'")
    return run


def _update_run_status(registry_dir, run: str, symbol: str, add: Mapping[str, Sequence[str]]) -> None:
    """Append VINs to lists in runs/<run>/status.json (caller holds the lock)."""
    rel = _run_status_rel(run)
    status = _read_doc(registry_dir, rel) or {"run": run, "started": utc_now(), "symbols": {}}
    sym = status["symbols"].setdefault(symbol, {})
    for key, vins in add.items():
        lst = sym.setdefault(key, [])
        lst.extend(v for v in vins if v not in lst)
    status["updated"] = utc_now()
    _write_doc(registry_dir, rel, status)


def _run_status_rel(run: str) -> str:
    return f"runs/{_check_run(run)}/status.json"


def record_run_status(registry_dir, run: str, symbol: str, **lists: Sequence[str]) -> None:
    """Add entries such as failed=[target ids] to runs/<run>/status.json under the lock."""
    with registry_lock(registry_dir):
        _update_run_status(registry_dir, run, symbol, lists)


def trials_per_slot(registry_dir, entries: Iterable[Mapping[str, Any]]) -> dict:
    """{"SYMBOL/side": {n_trials, by_source, models}} from the models' metrics.json `dsr_trials`
    (training/trials.py: every configuration that competed for the slot); the largest count when the models
    of a slot disagree (folders from before slot-wide counting)."""
    out: dict[str, dict] = {}
    for e in sorted(entries, key=lambda e: e["vin"]):
        path = paths(registry_dir)["root"] / e["folder"] / "metrics.json"
        trials = (artifacts.read_json(path).get("dsr_trials") or {}) if path.is_file() else {}
        if trials.get("n_trials") is None:
            continue
        slot = out.setdefault(lineage_key(e["symbol"], e["side"]), {"n_trials": 0, "models": 0})
        slot["models"] += 1
        if int(trials["n_trials"]) >= slot["n_trials"]:
            slot["n_trials"] = int(trials["n_trials"])
            if trials.get("by_source"):
                slot["by_source"] = trials["by_source"]
    return dict(sorted(out.items()))


def write_run_summary(registry_dir, run: str) -> dict:
    """summary/<run>/engine_summary.json: counts of what the run registered, promoted and rejected."""
    _check_run(run)
    with registry_lock(registry_dir):
        index = read_index(registry_dir)
        status = _read_doc(registry_dir, _run_status_rel(run)) or {"symbols": {}}
        models = [e for e in index["models"].values() if e.get("run") == run]
        grades: dict[str, int] = {}
        for e in models:
            grades[str(e.get("grade"))] = grades.get(str(e.get("grade")), 0) + 1
        summary = {
            "run": run,
            "generated": utc_now(),
            "models_registered": len(models),
            "gate_passed": sum(bool(e.get("gate_passed")) for e in models),
            "grades": dict(sorted(grades.items())),
            "by_symbol": {s: {k: len(v) for k, v in d.items()} for s, d in sorted(status["symbols"].items())},
            "champions": [
                r for r in roster(registry_dir) if index["models"].get(r["vin"], {}).get("run") == run
            ],
            "dsr_trials_per_slot": trials_per_slot(registry_dir, models),
        }
        _write_doc(registry_dir, f"summary/{run}/engine_summary.json", summary)
    return summary


# ---- archive, cleanup, deploy ------------------------------------------------------------------------------
def rank_key(entry: Mapping[str, Any]) -> tuple:
    """Best first: gate passed on validation, then the annualised Sharpe of the validation per-bar after-cost
    returns (missing last), then newest. Never a test-segment value (the index's `score`, metrics.json's test
    per-trade Sharpe, is reported only): archive, cleanup and deploy's best champion rank with this. A model
    without validation evidence ranks as not passed: its gate of record is a test verdict."""
    val = entry.get("validation") or {}
    s = val.get("sharpe")
    return (not val.get("gate_passed"), s is None, -(s or 0.0), _neg_time(entry["created"]))


def _neg_time(text: str) -> float:
    return -_parse_time(text).timestamp()


def archive(
    registry_dir,
    top_percent: float = 10.0,
    *,
    archive_dir: str | os.PathLike | None = None,
    dry_run: bool = False,
) -> list[dict]:
    """Copy the best `top_percent` % of registered models (at least one) with their index entry as
    metadata.json to archive/<VIN>/, and list them in archive/archive_registry.json. Returns the selected
    entries."""
    if not 0 < top_percent <= 100:
        raise RegistryError(f"--top-percent must be in (0, 100], got {top_percent}")
    root = Path(archive_dir) if archive_dir else paths(registry_dir)["archive"]
    models = sorted(read_index(registry_dir)["models"].values(), key=rank_key)
    chosen = models[: max(1, math.ceil(len(models) * top_percent / 100))] if models else []
    if dry_run:
        return chosen
    for e in chosen:
        src = paths(registry_dir)["root"] / e["folder"]
        verify_folder(src)
        dest = root / e["vin"]
        if dest.is_dir():
            continue
        tmp = _copy_tree(src, root, e["vin"])
        artifacts.write_json(tmp / "metadata.json", e)
        os.rename(tmp, dest)
    with registry_lock(registry_dir):
        index = read_index(registry_dir)
        for e in chosen:
            if e["vin"] in index["models"]:
                index["models"][e["vin"]]["archived"] = True
        _write_index(registry_dir, index)
        reg_path = root / "archive_registry.json"
        reg = artifacts.read_json(reg_path) if reg_path.is_file() else {"models": {}}
        for e in chosen:
            reg["models"].setdefault(
                e["vin"],
                {
                    "archived": utc_now(),
                    "symbol": e["symbol"],
                    "side": e["side"],
                    "version": e["version"],
                    "grade": e.get("grade"),
                    "score": e.get("score"),
                    "folder": e["vin"],
                },
            )
        artifacts.write_json(reg_path, reg)
    return chosen


def protected_vins(registry_dir, index: dict | None = None) -> set[str]:
    """Models cleanup never removes: current champions, their rollback stacks, archived and deployed
    models."""
    index = read_index(registry_dir) if index is None else index
    keep = {v for v, e in index["models"].items() if e.get("archived") or e.get("status") == "champion"}
    champ_dir = paths(registry_dir)["champions"]
    for path in champ_dir.glob("*.json") if champ_dir.is_dir() else []:
        if path.name == "roster.json":
            continue
        for slot in artifacts.read_json(path).get("sides", {}).values():
            keep.add(slot.get("champion"))
            keep.update(p["vin"] for p in slot.get("previous", []))
    for d in deployed(registry_dir):
        keep.add(d.get("vin"))
    keep.discard(None)
    return keep


def cleanup(
    registry_dir,
    *,
    keep_days: float = 7,
    keep_top: int = 20,
    dry_run: bool = False,
    log_dirs: Iterable[str | os.PathLike] = (),
    now: dt.datetime | None = None,
) -> dict:
    """Remove log files older than `keep_days` (under registry logs/ and `log_dirs`) and non-protected models
    that are older than `keep_days` and not among the `keep_top` best. Returns {"logs": [...], "models":
    [...], "dry_run": bool}; with dry_run nothing is deleted."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=keep_days)
    logs = []
    for d in [paths(registry_dir)["logs"], *map(Path, log_dirs)]:
        if d.is_dir():
            for p in sorted(d.rglob("*")):
                if p.is_file() and dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC) < cutoff:
                    logs.append(str(p))
    with registry_lock(registry_dir):
        index = read_index(registry_dir)
        keep = protected_vins(registry_dir, index)
        top = {e["vin"] for e in sorted(index["models"].values(), key=rank_key)[: max(0, int(keep_top))]}
        doomed = [
            v
            for v, e in sorted(index["models"].items())
            if v not in keep and v not in top and _parse_time(e["created"]) < cutoff
        ]
        if not dry_run:
            for v in doomed:
                shutil.rmtree(paths(registry_dir)["root"] / index["models"][v]["folder"], ignore_errors=True)
                del index["models"][v]
            _write_index(registry_dir, index)
            for p in logs:
                Path(p).unlink(missing_ok=True)
    return {"logs": logs, "models": doomed, "dry_run": dry_run}


def _slot_link(registry_dir, slot: int) -> Path:
    if int(slot) < 0:
        raise RegistryError(f"deployment slot must be >= 0, got {slot}")
    return paths(registry_dir)["deployments"] / f"model_{int(slot)}"


def deployed(registry_dir) -> list[dict]:
    """deployment_info.json of every slot, slot order."""
    d = paths(registry_dir)["deployments"]
    out = []
    for link in sorted(d.glob("model_*"), key=lambda p: int(p.name.split("_")[1])) if d.is_dir() else []:
        info = link / "deployment_info.json"
        if info.is_file():
            out.append(artifacts.read_json(info))
    return out


def best_champion(registry_dir) -> str:
    champs = roster(registry_dir)
    if not champs:
        raise RegistryError("no champions yet: promote a model first (or pass a VIN)")
    index = read_index(registry_dir)
    return min((index["models"][c["vin"]] for c in champs if c["vin"] in index["models"]), key=rank_key)[
        "vin"
    ]


def deploy(registry_dir, slot: int, vin: str | None = None, now: str | None = None) -> dict:
    """Write a verified model's files and deployment_info.json to a fresh folder, then point
    deployments/model_<N> at it with one atomic rename of a symlink: a reader sees the old slot or the new
    one, never a mix."""
    vin = vin or best_champion(registry_dir)
    model = load_model(registry_dir, vin, model="deployed")  # verifies; the model the slot serves
    entry = model.entry
    link = _slot_link(registry_dir, slot)
    store = link.parent / ".slots"
    stamp = (now or utc_now()).replace(":", "").replace("-", "")
    tmp = _copy_tree(model.folder, store, f"model_{slot}")
    info = {
        "slot": int(slot),
        "vin": vin,
        "version": entry["version"],
        "symbol": entry["symbol"],
        "side": entry["side"],
        "window": entry["window"],
        "target": entry["target"],
        "model_type": entry["model_type"],
        "grade": entry.get("grade"),
        "deployed": now or utc_now(),
        # the model file the slot serves: the refit (refit/<file>) when the folder has one (docs/LIFECYCLE.md)
        "model_file": (f"{REFIT_DIR}/" if model.source == "refit" else "") + entry["model_file"],
        "files": entry["files"],
    }
    artifacts.write_json(tmp / "deployment_info.json", info)
    final = store / f"model_{slot}-{stamp}-{vin[-6:]}"
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    with registry_lock(registry_dir):
        old = link.resolve() if link.is_symlink() else None
        if link.exists() and not link.is_symlink():
            raise RegistryError(f"{link} is a plain folder, not a slot link; move it away first")
        tmp_link = link.parent / f".{link.name}.{os.getpid()}.lnk"
        if tmp_link.is_symlink():
            tmp_link.unlink()
        os.symlink(os.path.relpath(final, link.parent), tmp_link)
        os.replace(tmp_link, link)
        if old is not None and old != final.resolve() and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return info


def benchmark(registry_dir, vins: Sequence[str], frame, labels) -> list[dict]:
    """Score several models on the same data (macro average precision on rows with labels 0/1/2)."""
    scorer = macro_ap_scorer(frame, labels)
    out = []
    for vin in vins:
        m = load_model(registry_dir, vin)
        out.append(
            {
                "vin": vin,
                "symbol": m.entry["symbol"],
                "side": m.entry["side"],
                "version": m.entry["version"],
                "macro_ap": scorer(m),
                "rows": int(np.isin(np.asarray(labels), (0, 1, 2)).sum()),
            }
        )
    return sorted(out, key=lambda r: -(r["macro_ap"] if r["macro_ap"] == r["macro_ap"] else -1))
