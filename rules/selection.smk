# Feature screening (per symbol, training rows only) and selection (per variant, aggregated per symbol and
# overall), between features and stage 1. Code: workflow_scripts/selection/ (feature_screening.py,
# feature_selection.py), entries in workflow_scripts/selection/jobs.py.


# Seconds-long jobs run in the Snakemake process's host, not as one cluster job each (docs/OPERATIONS.md).
localrules:
    aggregate_selection,
    aggregate_selection_overall,


rule screen_features:
    input:
        features="results/features/{symbol}.parquet",
    output:
        json="results/screening/{symbol}/screening.json",
        csv="results/screening/{symbol}/report.csv",
        markdown="results/screening/{symbol}/report.md",
    log:
        "logs/screening/{symbol}.log",
    benchmark:
        "results/benchmarks/screening/{symbol}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=12000,
        runtime=runtime_min("screen_features", 45),
    params:
        **job("selection.screen_features", spec=group_spec("screening"), split=group_spec("split")),
    shell:
        JOB


rule select_features:
    input:
        features="results/features/{symbol}.parquet",
        screening="results/screening/{symbol}/screening.json",
        targets="results/targets/{symbol}/w{window}.parquet",
        split="results/splits/{symbol}/w{window}.json",
    output:
        table="results/selection/{symbol}/w{window}.parquet",
    log:
        "logs/selection/{symbol}/w{window}.log",
    benchmark:
        "results/benchmarks/selection/{symbol}/w{window}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=runtime_min("select_features", 45),
    params:
        **job("selection.select_features", spec=group_spec("selection"), targets=TARGETS),
    shell:
        JOB


rule aggregate_selection:
    input:
        per_window=symbol_windows("results/selection/{symbol}/w{w}.parquet"),
    output:
        json="results/selection/{symbol}/selected.json",
        markdown="results/selection/{symbol}/selected.md",
        plot="results/selection/{symbol}/importance.png",
    log:
        "logs/selection/{symbol}/aggregate.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("aggregate_selection", 10),
    params:
        **job("selection.aggregate_selection", spec=group_spec("selection"), title=lambda wc: wc.symbol),
    shell:
        JOB


rule aggregate_selection_overall:
    input:
        per_window=pairs("results/selection/{symbol}/w{window}.parquet"),
    output:
        json="results/selection/overall.json",
        markdown="results/selection/overall.md",
        plot="results/selection/overall.png",
    log:
        "logs/selection/overall.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("aggregate_selection_overall", 10),
    params:
        **job("selection.aggregate_selection_overall", spec=group_spec("selection"), title="all symbols"),
    shell:
        JOB
