# The resolved configuration of the run, next to its results, and the universe it plans (coins too short for
# ingest or a window are left out with their reason, rules/common.smk plan_universe). Code: workflow_scripts/config/jobs.py


rule write_resolved_config:
    output:
        yaml="results/config/resolved.yaml",
        json="results/config/resolved.json",
        universe="results/config/universe.json",
    log:
        "logs/config/write_resolved_config.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min("write_resolved_config", 5),
    params:
        **job(
            "config.write_resolved_config",
            config=CFG,
            universe={"symbols": SYMBOLS, "windows": WINDOWS_OF, "skipped": SKIPPED},
        ),
    shell:
        JOB
