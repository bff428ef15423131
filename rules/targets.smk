# Bars -> swing event labels of every target of one window. Code: workflow_scripts/targets/ (swing_targets.py,
# grammar.py), entry in workflow_scripts/targets/jobs.py.


rule build_swing_targets:
    input:
        bars="results/ingest/{symbol}.parquet",
    output:
        targets="results/targets/{symbol}/w{window}.parquet",
        summary="results/targets/{symbol}/w{window}.summary.json",
    log:
        "logs/targets/{symbol}/w{window}.log",
    benchmark:
        "results/benchmarks/targets/{symbol}/w{window}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min("build_swing_targets", 15),
    params:
        **job("targets.build_swing_targets", spec=targets_spec()),
    shell:
        JOB
