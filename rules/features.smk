# Bars -> each coin's own features -> cross-coin tables. Code: workflow_scripts/features/


rule build_features:
    input:
        bars="results/ingest/{symbol}.parquet",
    output:
        features="results/features/base/{symbol}.parquet",
    params:
        spec=as_json(CFG["features"]),
    log:
        "logs/features/base/{symbol}.log",
    benchmark:
        "results/benchmarks/features/base/{symbol}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("build_features", 45),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.build_features --bars {input.bars} --spec {params.spec:q} "
        "--out {output.features} > {log} 2>&1"


rule add_cross_coin_features:
    input:
        unpack(lambda wc: {"own": f"results/features/base/{wc.symbol}.parquet"} | other_base_features(wc)),
    output:
        features="results/features/{symbol}.parquet",
    params:
        others=others_arg,
    log:
        "logs/features/cross/{symbol}.log",
    benchmark:
        "results/benchmarks/features/cross/{symbol}.tsv"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=runtime_min("add_cross_coin_features", 30),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.add_cross_coin --own {input.own} --others {params.others} "
        "--out {output.features} > {log} 2>&1"
