"""Production provenance guard: a production run starts only from a state that a commit can rebuild.

`env.require_provenance: true` (config/env/production.yaml) makes rules/common.smk call `require_reproducible`
before planning. It refuses, with every reason listed, when
- the checkout is not a git repository, or code/config/profiles/environment files differ from HEAD (modified,
  staged, deleted or untracked: `git status --porcelain` over WORKFLOW_PATHS);
- a raw bar file the run reads is not tracked by DVC (no `<file>.dvc` and no `.dvc` of an enclosing folder),
  its `.dvc` file is not committed, or the file's content differs from the md5 its `.dvc` file records.
A file-level `.dvc` is checked by content (md5, as DVC records it); a folder-level one only for coverage.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path

import yaml

# What decides a model besides the data: a change to any of these must be committed before production.
WORKFLOW_PATHS = (
    "Snakefile",
    "rules",
    "workflow_scripts",
    "config",
    "envs",
    "profiles",
    "pyproject.toml",
    "constraints.txt",
    "dvc.yaml",
)
MAX_LISTED = 20


class ProvenanceError(RuntimeError):
    """The run would produce models that no commit can rebuild; the message lists why."""


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False, timeout=60
    )


def uncommitted_changes(repo: Path, paths: Iterable[str] = WORKFLOW_PATHS) -> list[str]:
    """`git status --porcelain` lines (e.g. ' M rules/ingest.smk', '?? config/env/new.yaml') for `paths`;
    raises ProvenanceError when `repo` is not inside a git work tree."""
    inside = _git(repo, "rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise ProvenanceError(f"{repo} is not a git checkout: production models must come from a commit")
    existing = [p for p in paths if (repo / p).exists() or _git(repo, "ls-files", "--", p).stdout.strip()]
    if not existing:
        return []
    r = _git(repo, "status", "--porcelain", "--untracked-files=all", "--", *existing)
    if r.returncode != 0:
        raise ProvenanceError(f"git status failed in {repo}: {r.stderr.strip()}")
    return [line for line in r.stdout.splitlines() if line.strip()]


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dvc_file_for(path: Path) -> Path | None:
    """The .dvc file that tracks `path`: `<path>.dvc`, else the `.dvc` of the nearest enclosing folder."""
    if Path(f"{path}.dvc").is_file():
        return Path(f"{path}.dvc")
    for parent in path.parents:
        if Path(f"{parent}.dvc").is_file():
            return Path(f"{parent}.dvc")
    return None


def untracked_raw_data(repo: Path, raw_files: Iterable[Path]) -> list[str]:
    """Why each raw file is not reproducibly tracked by DVC (empty list: all are)."""
    problems = []
    for f in raw_files:
        f = Path(f).resolve()
        dvc_file = _dvc_file_for(f)
        if dvc_file is None:
            problems.append(f"{f}: not tracked by DVC (run `dvc add {f}` and commit the .dvc file)")
            continue
        if (
            _git(repo, "ls-files", "--error-unmatch", str(dvc_file)).returncode != 0
            or _git(repo, "status", "--porcelain", "--", str(dvc_file)).stdout.strip()
        ):
            problems.append(f"{dvc_file}: not committed")
        if _git(repo, "ls-files", "--error-unmatch", str(f)).returncode == 0:
            problems.append(f"{f}: also committed to git (DVC-tracked data belongs in the DVC cache only)")
        if dvc_file == Path(f"{f}.dvc"):
            try:
                outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or []
                recorded = outs[0].get("md5")
            except (OSError, yaml.YAMLError, AttributeError, IndexError) as exc:
                problems.append(f"{dvc_file}: unreadable ({exc}); expected a `dvc add` file with outs[0].md5")
                continue
            if recorded != _md5(f):
                problems.append(
                    f"{f}: content differs from {dvc_file.name} (md5 {recorded}); `dvc add` it again "
                    "and commit, or `dvc checkout` the recorded version"
                )
    return problems


def require_reproducible(repo: str | Path, raw_files: Iterable[Path]) -> None:
    """Raise ProvenanceError listing every reason a production run here could not be rebuilt from a commit."""
    repo = Path(repo).resolve()
    changes = uncommitted_changes(repo)
    problems = [f"uncommitted change: {line.strip()}" for line in changes[:MAX_LISTED]]
    if len(changes) > MAX_LISTED:
        problems.append(f"... and {len(changes) - MAX_LISTED} more uncommitted changes")
    problems += untracked_raw_data(repo, raw_files)
    if problems:
        raise ProvenanceError(
            "env.require_provenance: this production run is refused, its models could not be rebuilt from a "
            "commit:\n  - "
            + "\n  - ".join(problems)
            + "\nCommit code and config, put raw data under DVC (dvc add + commit the .dvc files), "
            "then rerun."
        )
