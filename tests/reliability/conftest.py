"""Shared machinery of the reliability proofs: private workflow copies (tests.sandbox), the tiny config
of the integration test (tests/workflow/conftest.py), and helpers to read what a run left behind."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.sandbox import ROOT, copy_workflow, snakemake_cmd
from tests.workflow.conftest import TINY, planned_jobs

VENV_BIN = Path(snakemake_cmd()[0]).parent
TINY_OVERRIDES = ["features.lookbacks=[5,21]", "features.lags=[]"]
SYMBOLS = ("BTCUSDT", "ETHUSDT")
# Files that hold timings (or are timings): never compared byte for byte. Optuna's journal (the tuning stages'
# resume log) records trial start and end times and worker ids.
TIMING_FILES = ("training_log.json",)
TIMING_SUFFIXES = (".journal",)
# JSON keys that hold timings (tuning results record the time spent against a budget in minutes): dropped
# before hashing a JSON file that has them, so the rest of the file is still compared.
TIMING_KEY = re.compile(r"(^|_)seconds$")


def env() -> dict:
    """Subprocess environment: the interpreter's bin first on PATH (snakemake, python of the jobs)."""
    return dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def tiny(*overrides: str, groups: dict | None = None) -> list[str]:
    """TINY with extra Hydra dotted overrides (and optionally other group choices)."""
    choices = dict(item.split("=", 1) for item in TINY[:3])
    choices.update(groups or {})
    allov = TINY_OVERRIDES + list(overrides)
    return [f"{k}={v}" for k, v in choices.items()] + [
        "overrides=[" + ",".join(f'"{o}"' for o in allov) + "]"
    ]


# The complete runs of the slow proofs (clean, crash, look-ahead): the tiny configuration with the smallest
# tuning budget (one trial per study, at most 200 rounds) and CV folds that the tiny span's rarer chosen
# variants can fill (3 folds of at least 50 training rows, as the tuning and registry workflow tests use): the
# smallest real run that still has every stage, tuning and production included, at work.
RUN = tiny(
    "tuning.budget.trials.stage2=1",
    "tuning.max_rounds=200",
    "tuning.cv.n_folds=3",
    "tuning.cv.min_train_rows=50",
)


def smk(
    workdir: Path, *args: str, config: list[str] | None = None, timeout: float = 900, cores: int = 2
) -> subprocess.CompletedProcess:
    """Run Snakemake in a sandbox (default configuration: TINY); never raises on a non-zero exit."""
    cmd = snakemake_cmd(*args, config=TINY if config is None else config, cores=cores)
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env())


def output_text(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


_TEMPLATE: dict[str, Path] = {}


def sandbox(root: Path, symbols=SYMBOLS) -> Path:
    """A private copy of the workflow. All copies of one test session come from one snapshot taken at its
    first use, so runs compared with each other use the same workflow code even while the repository is being
    edited."""
    if "wf" not in _TEMPLATE:
        import tempfile

        _TEMPLATE["wf"] = copy_workflow(
            Path(tempfile.mkdtemp(prefix="swingflow-reliability-")) / "wf", symbols=SYMBOLS
        )
    shutil.copytree(_TEMPLATE["wf"], root, symlinks=True)
    for p in (root / "data" / "raw").iterdir():
        if p.name.split("_")[0] not in symbols:
            p.unlink()
    return root


def incomplete_outputs(workdir: Path) -> set[str]:
    """Outputs Snakemake marked as being written by a job that did not finish (.snakemake/incomplete)."""
    folder = workdir / ".snakemake" / "incomplete"
    out = set()
    if folder.is_dir():
        for p in folder.iterdir():
            try:
                out.add(base64.urlsafe_b64decode(p.name.encode()).decode())
            except Exception:  # noqa: BLE001 - not a marker
                continue
    return out


def tmp_leftovers(workdir: Path) -> list[str]:
    """Temporary files of workflow_scripts.artifacts.atomic_path (`.<name>.<random>.tmp`) left under
    results/."""
    res = workdir / "results"
    return sorted(str(p.relative_to(workdir)) for p in res.rglob("*.tmp")) if res.is_dir() else []


def unreadable_outputs(workdir: Path) -> list[str]:
    """Every parquet / json / csv under results/ (temporaries excluded) that does not read back whole."""
    bad = []
    res = workdir / "results"
    if not res.is_dir():
        return bad
    for p in sorted(res.rglob("*")):
        if not p.is_file() or p.name.endswith(".tmp"):
            continue
        try:
            if p.suffix == ".parquet":
                pd.read_parquet(p)
            elif p.suffix == ".json":
                json.loads(p.read_text(encoding="utf-8"))
            elif p.suffix == ".csv":
                pd.read_csv(p)
        except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
            bad.append(f"{p.relative_to(workdir)}: {type(exc).__name__}: {exc}")
    return bad


JOB_BLOCK = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):\n(?P<body>(?:    .*\n)+)", re.MULTILINE)


def jobs_of_dry_run(text: str) -> list[tuple[str, list[str]]]:
    """[(rule, outputs)] for every job block of a dry run's printout."""
    jobs = []
    for m in JOB_BLOCK.finditer(text):
        outputs = []
        for line in m["body"].splitlines():
            line = line.strip()
            if line.startswith("output: "):
                outputs = [s.strip() for s in line[len("output: ") :].split(",")]
        jobs.append((m[1], outputs))
    return jobs


def unfinished_jobs(workdir: Path, jobs: list[tuple[str, list[str]]]) -> dict[str, int]:
    """Per rule, the jobs with an output missing or marked incomplete (i.e. what a resume must redo)."""
    incomplete = incomplete_outputs(workdir)
    out: dict[str, int] = {}
    for rule, outputs in jobs:
        if rule == "all" or not outputs:
            continue
        if any(not (workdir / o).exists() or o in incomplete for o in outputs):
            out[rule] = out.get(rule, 0) + 1
    return out


def finished_jobs_of_log(text: str) -> dict[str, int]:
    """Per rule, the jobs a real run finished ("Finished jobid: N (Rule: NAME)")."""
    out: dict[str, int] = {}
    for rule in re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", text):
        if rule != "all":
            out[rule] = out.get(rule, 0) + 1
    return out


def hashes(workdir: Path, under: str = "results", skip_dirs=("benchmarks",)) -> dict[str, str]:
    """sha256 of every file under `under` except timings (benchmarks/, training_log.json) and temporaries."""
    from workflow_scripts.artifacts import sha256_file, to_json_text

    base = workdir / under
    out = {}
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(workdir).as_posix()
        if not p.is_file() or p.name in TIMING_FILES or p.name.endswith((".tmp", *TIMING_SUFFIXES)):
            continue
        if any(rel.startswith(f"{under}/{d}/") for d in skip_dirs):
            continue
        out[rel] = sha256_file(p)
        if p.suffix == ".json":
            doc = json.loads(p.read_text(encoding="utf-8"))
            kept = _without_timings(doc)
            if kept != doc:
                out[rel] = "without timings: " + hashlib.sha256(to_json_text(kept).encode()).hexdigest()
    return out


def _without_timings(obj):
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if not TIMING_KEY.search(str(k))}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory) -> Path:
    """One complete, uninterrupted tiny run of the real workflow on real bars (shared by the slow proofs).

    SWINGFLOW_RELIABILITY_CLEAN_RUN=<folder> reuses a finished tiny run's sandbox (a local convenience when
    iterating on one slow test; CI leaves it unset)."""
    reuse = os.environ.get("SWINGFLOW_RELIABILITY_CLEAN_RUN")
    if reuse:
        wd = Path(reuse)
        assert (wd / "results" / "best_variant" / "summary.md").is_file(), f"{wd}: not a finished tiny run"
        return wd
    wd = sandbox(tmp_path_factory.mktemp("clean") / "wf")
    proc = smk(wd, config=RUN, timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"clean tiny run failed ({proc.returncode}):\n{output_text(proc)[-6000:]}")
    return wd


@pytest.fixture(scope="session")
def raw_btc() -> pd.DataFrame:
    return pd.read_parquet(ROOT / "data" / "raw" / "BTCUSDT_1h.parquet")


def replace_raw(
    workdir: Path,
    symbol: str,
    frame: pd.DataFrame | None = None,
    *,
    data: bytes | None = None,
    suffix: str = ".parquet",
) -> Path:
    """Put `frame` (or raw bytes) in data/raw as the only raw file of `symbol`."""
    raw = workdir / "data" / "raw"
    for p in raw.glob(f"{symbol}_1h.*"):
        p.unlink()
    path = raw / f"{symbol}_1h{suffix}"
    if data is not None:
        path.write_bytes(data)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise ValueError(suffix)
    return path


__all__ = ["TINY", "planned_jobs", "shutil"]
