# Bars -> chronological train/validation/test segments with purge and embargo. Code: workflow_scripts/splits.py


rule split_segments:
    input:
        bars="results/ingest/{symbol}.parquet",
    output:
        split="results/splits/{symbol}/w{window}.json",
    params:
        spec=split_spec,
    log:
        "logs/splits/{symbol}/w{window}.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min("split_segments", 5),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.split_segments --bars {input.bars} --spec {params.spec:q} "
        "--out {output.split} > {log} 2>&1"
