# The resolved configuration of the run, next to its results. Code: workflow_scripts/entries/write_config.py


rule write_resolved_config:
    output:
        yaml="results/config/resolved.yaml",
        json="results/config/resolved.json",
    params:
        config=as_json(CFG),
    log:
        "logs/config/write_resolved_config.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min("write_resolved_config", 5),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.write_config --config {params.config:q} "
        "--out-yaml {output.yaml} --out-json {output.json} > {log} 2>&1"
