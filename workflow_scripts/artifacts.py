"""The one writer of artifacts and the one hash function.

Every file a rule produces goes through here: it is written to a temporary name in the same folder and renamed
into place, so a killed job never leaves a truncated file that a later rule could read as complete. The
temporary is hidden and ends in `.tmp` (`.<name>.<8 random characters>.tmp`), so no output name or output glob
matches it; a job killed mid-write leaves one behind, and the next write of the same output (the rerun of that
job) removes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Temporaries of `path` left by killed writes (`.<name>.XXXXXXXX.tmp`, tempfile.mkstemp's 8
    characters)."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name))


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove what killed writes of `path` left. Safe: one output has one writer (Snakemake runs one job per
    output), so a temporary of `path` seen before a new write can only belong to a dead one."""
    removed = stale_temporaries(path)
    for p in removed:
        p.unlink(missing_ok=True)
    return removed


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def to_json_text(obj: Any) -> str:
    """Canonical JSON: sorted keys, fixed indentation, trailing newline (byte-identical for equal objects)."""
    return json.dumps(obj, sort_keys=True, indent=2, allow_nan=True, default=_json_default) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, to_json_text(obj))


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_parquet(path: str | os.PathLike, df: pd.DataFrame) -> None:
    """Parquet without pandas' index metadata drift; zstd keeps feature tables small."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, compression="zstd")


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_verified(path: str | os.PathLike, expected: str, recorded_in: str | os.PathLike) -> bytes:
    """The bytes of `path` if their sha256 equals `expected` (the hash recorded in `recorded_in`); otherwise
    ValueError naming the file, where the hash was recorded and both hashes. Callers parse the returned bytes,
    so what is loaded is exactly what was checked (a truncated, garbled or replaced artifact is refused)."""
    data = Path(path).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ValueError(
            f"{path}: sha256 mismatch: the file has {actual}, {recorded_in} records {expected} "
            "(changed or damaged after it was written: rerun the rule that makes it)"
        )
    return data


def _json_default(obj: Any) -> Any:
    # numpy scalars and timestamps show up in metrics; JSON gets their plain Python value.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (pd.Timestamp,)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_document(path, fmt: str, expected_sha256: str | None = None) -> dict:
    """The JSON document of a file of format `fmt` (an encoder, a model document); with `expected_sha256` (the
    version a head recorded) a file whose sha256 differs is refused before it is parsed. Errors name the
    file."""
    if expected_sha256 is None:
        d = read_json(path)
    else:
        d = json.loads(read_verified(path, expected_sha256, "the expected encoder version"))
    if d.get("format") != fmt:
        raise ValueError(f"{path}: not a {fmt} file (format {d.get('format')!r})")
    return d
