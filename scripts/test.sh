#!/usr/bin/env bash
# One command: install (with test extras), check style (snakemake --lint, snakefmt, ruff), run the whole test suite: the default suite,
# then the slow end-to-end tests. Arguments go to one pytest call instead (e.g. `bash scripts/test.sh tests/ops`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh dev
source .venv/bin/activate
# Style: the workflow (Snakemake's linter, snakefmt) and the Python code (ruff lint and format) are checked as-is.
snakemake --lint
snakefmt --check Snakefile rules
ruff check .
ruff format --check .
if [ $# -gt 0 ]; then
  python -m pytest "$@"
else
  python -m pytest               # the default suite: unit and component tests (about 8 minutes on 2 cores)
  python -m pytest -m slow       # end-to-end runs through Snakemake, Slurm, DVC, MLflow (docs/RELIABILITY.md)
fi
