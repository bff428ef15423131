#!/usr/bin/env bash
# Creates .venv and installs swingflow with its dependencies (torch pinned to the CPU build via constraints.txt).
# Idempotent: a second run only checks. Usage: bash scripts/install.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
extras=""
[ "${1:-}" = "dev" ] && extras="[dev]"
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".${extras}"
# graphviz's `dot` turns --rulegraph / --dag into pictures; optional, so a failure here is only a warning.
if ! command -v dot >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) || echo "warning: graphviz not installed" >&2
fi
echo "installed into $(pwd)/.venv (activate with: source .venv/bin/activate)"
