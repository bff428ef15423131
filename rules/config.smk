# The resolved configuration of the run, next to its results. Code: workflow_scripts/config/jobs.py


rule write_resolved_config:
    output:
        yaml="results/config/resolved.yaml",
        json="results/config/resolved.json",
    log:
        "logs/config/write_resolved_config.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min("write_resolved_config", 5),
    params:
        **job("config.write_resolved_config", config=CFG),
    shell:
        JOB
