"""The one entry every rule runs: `python -m workflow_scripts.job MANIFEST`.

The rule's shell line is the same for every rule (rules/common.smk, `JOB`); its `params.job` is one JSON
manifest holding the rule's named input and output files, its params, threads and wildcards, built from the
rule itself (rules/common.smk, `job("<stage>.<function>", ...)`), so a file is named once: in the rule. This
module calls that function of `workflow_scripts/<stage>/jobs.py` (named like the rule) with a `Job`. Jobs read
the named files as `job.input.features`, `job.output.variants`, the config slices as `job.params.spec`.

A known input error (ValueError, FileNotFoundError, KeyError) ends the job with exit 1 and one readable line
instead of a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import re
import resource
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from types import SimpleNamespace

STAGES = (
    "config",
    "data",
    "features",
    "targets",
    "selection",
    "training",
    "agents",
    "evaluation",
    "registry",
    "lifecycle",
    "report",
)


@dataclass(frozen=True)
class Job:
    entry: str  # "<stage>.<function>"
    input: SimpleNamespace
    output: SimpleNamespace
    params: SimpleNamespace
    wildcards: SimpleNamespace
    threads: int

    @classmethod
    def from_manifest(cls, manifest: dict) -> Job:
        return cls(
            entry=manifest["entry"],
            input=SimpleNamespace(**manifest["input"]),
            output=SimpleNamespace(**manifest["output"]),
            params=SimpleNamespace(**manifest["params"]),
            wildcards=SimpleNamespace(**manifest["wildcards"]),
            threads=int(manifest["threads"]),
        )


def keyed(keys, paths, token: str) -> dict:
    """{key: path} for a rule input expanded over `keys` (e.g. symbols); `token` ("/{}/", "/w{}.") must name
    each key inside its own path, so an input list in another order is an error instead of a silent mix-up."""
    keys, paths = list(keys), list(paths)
    if len(keys) != len(paths):
        raise ValueError(f"expected one path per key {keys}, got {len(paths)}: {paths}")
    for key, path in zip(keys, paths):
        if token.format(key) not in str(path):
            raise ValueError(f"input {path} is not the one of {key!r} (expected {token.format(key)!r} in it)")
    return dict(zip(keys, paths))


def _of_side(path: str, side: str) -> bool:
    """Whether a path is one side's: its file stem is the side's name (`high.json`, `high.report.json`, a
    folder `.../w5/high`) or one of its folders is."""
    parts = PurePosixPath(path).parts
    return bool(parts) and (parts[-1].split(".")[0] == side or side in parts[:-1])


def each_side(job: Job, single: Iterable[str]) -> list[Job]:
    """The per-side jobs inside a job over every side (`params.sides`; one job per (symbol, window) writes
    both sides, docs/ARCHITECTURE.md "Job granularity"). In each, an input or output that is a list of
    paths of the sides (one per side, or one per window and side) keeps only its side's paths, and a name
    in `single` becomes that side's one path; other inputs (the symbol's features, a window's stage-2
    result) and params are shared; `wildcards.side` is the side."""
    sides, single = list(job.params.sides), set(single)

    def narrow(files: SimpleNamespace, side: str) -> SimpleNamespace:
        out = {}
        for name, value in vars(files).items():
            if isinstance(value, list) and value and all(any(_of_side(v, s) for s in sides) for v in value):
                value = [v for v in value if _of_side(v, side)]
                if name in single:
                    if len(value) != 1:
                        raise ValueError(f"{name}: expected one path of side {side!r}, got {value}")
                    value = value[0]
            out[name] = value
        return SimpleNamespace(**out)

    return [
        replace(
            job,
            input=narrow(job.input, side),
            output=narrow(job.output, side),
            wildcards=SimpleNamespace(**vars(job.wildcards), side=side),
        )
        for side in sides
    ]


def job_function(entry: str):
    stage, _, name = entry.partition(".")
    if stage not in STAGES:
        raise ValueError(f"manifest entry {entry!r}: stage {stage!r} is not one of {list(STAGES)}")
    fn = getattr(importlib.import_module(f"workflow_scripts.{stage}.jobs"), name, None)
    if fn is None:
        raise ValueError(
            f"manifest entry {entry!r}: workflow_scripts/{stage}/jobs.py has no function {name}()"
        )
    return fn


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m workflow_scripts.job MANIFEST_JSON", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    job = Job.from_manifest(json.loads(argv[0]))
    try:
        fn = job_function(job.entry)
        start = time.process_time()
        fn(job)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        logging.getLogger("swingflow").error("%s", exc)
        print(f"swingflow error: {exc}", file=sys.stderr)
        return 1
    print(cpu_line(job.entry, time.process_time() - start), file=sys.stderr)
    return 0


def cpu_line(entry: str, in_function: float) -> str:
    """The job's last log line: CPU seconds of its own work (the stage function, after the interpreter started
    and the stage module was imported) and of the whole process, and the process's peak resident memory, so
    benchmarks/demo.py can tell useful compute from start-up and give each stage its CPU and memory
    (`CPU_LINE` parses it). Snakemake's benchmark files sample every 0.5 s and miss most sub-second jobs."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    process = usage.ru_utime + usage.ru_stime
    return (
        f"swingflow job {entry}: cpu {in_function:.3f} s in the function, {process:.3f} s in the process, "
        f"peak rss {usage.ru_maxrss / 1024:.1f} MB"  # ru_maxrss is in KiB on Linux
    )


CPU_LINE = re.compile(
    r"^swingflow job (\S+): cpu ([0-9.]+) s in the function, ([0-9.]+) s in the process, "
    r"peak rss ([0-9.]+) MB$",
    re.M,
)


def exit_now(code: int) -> None:
    """End the job process without the interpreter's teardown: the exit handlers run (logging's flush, the
    libraries' own), then os._exit skips freeing ~850 modules one by one, which cost 0.1-0.2 s of CPU per job
    (15-25 s over the demo's 151 jobs, benchmarks/demo.py). Every output is closed by then: the stage
    functions write through `with` blocks and whole-file writers (no file object outlives its write)."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
