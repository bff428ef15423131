#!/usr/bin/env bash
# System packages the slow operations tests need on a Debian/Ubuntu CI machine (root, apt): a real single-node
# Slurm (tests/ops/test_slurm.py via scripts/slurm_local.sh), munge, graphviz for the DAG pictures, git for the
# production guard test. Idempotent; without root or apt it only warns (those tests then skip).
set -euo pipefail
PACKAGES=(slurmctld slurmd slurm-client munge graphviz git)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "ci_system_deps: all present (${PACKAGES[*]})"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ci_system_deps: warning: cannot install ${missing[*]} (needs root and apt-get); the tests that need them skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "ci_system_deps: installed ${missing[*]}"
