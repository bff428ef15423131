# Bars -> each coin's own features -> cross-coin tables. Code: workflow_scripts/features/ (one module per family,
# cross_coin.py), entries in workflow_scripts/features/jobs.py.

# build_features reads the own-feature spec only: a cross-coin change rebuilds no base table.
OWN_FEATURE_SPEC = {k: v for k, v in CFG["features"].items() if k != "cross_coin"}
# add_cross_coin_features reads features.cross_coin; all_pairs reads its mode only (no rerun for a basket edit).
CROSS_COIN = CFG["features"]["cross_coin"]
CROSS_COIN_SPEC = CROSS_COIN if CROSS_COIN["mode"] == "basket" else {"mode": "all_pairs"}


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
        **job("features.build_features", spec=OWN_FEATURE_SPEC),
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
        **job("features.add_cross_coin_features", spec=CROSS_COIN_SPEC),
    shell:
        JOB
