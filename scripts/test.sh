#!/usr/bin/env bash
# One command: install (with test extras), lint the workflow, run the whole test suite (slow tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh dev
source .venv/bin/activate
snakemake --lint
python -m pytest "$@"
