# Bars -> each coin's own features -> cross-coin tables. Code: workflow_scripts/features/ (one module per family),
# entries in workflow_scripts/features/jobs.py.


rule build_features:
    input:
        bars="results/ingest/{symbol}.parquet",
    output:
        features="results/features/base/{symbol}.parquet",
    log:
        "logs/features/base/{symbol}.log",
    benchmark:
        "results/benchmarks/features/base/{symbol}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("build_features", 45),
    params:
        **job("features.build_features", spec=CFG["features"]),
    shell:
        JOB


rule add_cross_coin_features:
    input:
        unpack(lambda wc: {"own": f"results/features/base/{wc.symbol}.parquet"} | other_base_features(wc)),
    output:
        features="results/features/{symbol}.parquet",
    log:
        "logs/features/cross/{symbol}.log",
    benchmark:
        "results/benchmarks/features/cross/{symbol}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=runtime_min("add_cross_coin_features", 30),
    params:
        **job("features.add_cross_coin_features"),
    shell:
        JOB
