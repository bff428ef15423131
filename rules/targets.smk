# Bars -> swing event labels of every target of one window. Code: workflow_scripts/swing_targets.py


rule build_swing_targets:
    input:
        bars="results/ingest/{symbol}.parquet",
    output:
        targets="results/targets/{symbol}/w{window}.parquet",
        summary="results/targets/{symbol}/w{window}.summary.json",
    params:
        spec=as_json(CFG["targets"]),
    log:
        "logs/targets/{symbol}/w{window}.log",
    benchmark:
        "results/benchmarks/targets/{symbol}/w{window}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min("build_swing_targets", 15),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.build_targets --bars {input.bars} --window {wildcards.window} "
        "--spec {params.spec:q} --out {output.targets} --summary {output.summary} > {log} 2>&1"
