# swingflow: raw bars -> features -> swing targets -> screening and selection -> stage-1 variants ->
# cost-aware evaluation -> best variant per (symbol, window, side).
# The stages, in order; each rules/<stage>.smk says which workflow_scripts module does the work.
from snakemake.utils import min_version

min_version("9.0")


include: "rules/common.smk"
include: "rules/config.smk"
include: "rules/ingest.smk"
include: "rules/features.smk"
include: "rules/targets.smk"
include: "rules/splits.smk"
include: "rules/selection.smk"
include: "rules/stage1.smk"
include: "rules/evaluation.smk"
include: "rules/best_variant.smk"
include: "rules/registry.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
