#!/usr/bin/env bash
# One command: install, then run the main job on the embedded demo data (BTC, ETH, SOL hourly bars; env=local-dev
# trains on 2025-01 onwards), scaled to run in minutes: the demo's target grid (config/targets/demo.yaml: 2 windows,
# 24 targets each) and tuning (config/tuning/demo.yaml: 3 CV folds, <= 300 rounds). The full settings:
# bash scripts/demo.sh --config targets=default tuning=default  (a --config of your own replaces the demo's)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
source .venv/bin/activate
# profiles/local: 2 cores and the rate-limiter span that keeps Snakemake's own CPU small (docs/ARCHITECTURE.md)
snakemake --profile profiles/local --config targets=demo tuning=demo "$@"
echo
echo "Results:"
echo "  best variant per symbol, window and side: results/best_variant/summary.md (and .csv, .parquet)"
echo "  per-symbol summaries:                     results/best_variant/<SYMBOL>/summary.md"
echo "  every stage-1 variant:                    results/stage1/<SYMBOL>/w<window>/<target>/"
echo "  resolved configuration of this run:       results/config/resolved.yaml"
echo "  logs:                                     logs/"
