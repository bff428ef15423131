# Feature screening (per symbol, training rows only) and selection (per variant, aggregated per symbol and
# overall), between features and stage 1. Code: workflow_scripts/feature_screening.py, feature_selection.py.


rule screen_features:
    input:
        features="results/features/{symbol}.parquet",
        split=lambda wc: f"results/splits/{wc.symbol}/w{max(WINDOWS)}.json",
    output:
        json="results/screening/{symbol}/screening.json",
        csv="results/screening/{symbol}/report.csv",
        markdown="results/screening/{symbol}/report.md",
    params:
        spec=group_spec("screening"),
    log:
        "logs/screening/{symbol}.log",
    benchmark:
        "results/benchmarks/screening/{symbol}.tsv"
    threads: 1
    resources:
        mem_mb=12000,
        runtime=runtime_min("screen_features", 45),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.screen_features --symbol {wildcards.symbol} "
        "--features {input.features} --split {input.split} --spec {params.spec:q} --out-json {output.json} "
        "--out-csv {output.csv} --out-markdown {output.markdown} > {log} 2>&1"


rule select_features:
    input:
        features="results/features/{symbol}.parquet",
        screening="results/screening/{symbol}/screening.json",
        targets="results/targets/{symbol}/w{window}.parquet",
        split="results/splits/{symbol}/w{window}.json",
    output:
        table="results/selection/{symbol}/w{window}.parquet",
    params:
        spec=group_spec("selection"),
        targets=" ".join(TARGETS),
    log:
        "logs/selection/{symbol}/w{window}.log",
    benchmark:
        "results/benchmarks/selection/{symbol}/w{window}.tsv"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=runtime_min("select_features", 45),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.select_features --features {input.features} "
        "--screening {input.screening} --targets {input.targets} --split {input.split} "
        "--targets-ids {params.targets} --spec {params.spec:q} --out {output.table} > {log} 2>&1"


rule aggregate_selection:
    input:
        per_window=expand("results/selection/{{symbol}}/w{window}.parquet", window=WINDOWS),
    output:
        json="results/selection/{symbol}/selected.json",
        markdown="results/selection/{symbol}/selected.md",
        plot="results/selection/{symbol}/importance.png",
    params:
        spec=group_spec("selection"),
    log:
        "logs/selection/{symbol}/aggregate.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("aggregate_selection", 10),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.aggregate_selection --per-window {input.per_window} "
        "--title {wildcards.symbol} --spec {params.spec:q} --out-json {output.json} "
        "--out-markdown {output.markdown} --out-plot {output.plot} > {log} 2>&1"


rule aggregate_selection_overall:
    input:
        per_window=expand("results/selection/{symbol}/w{window}.parquet", symbol=SYMBOLS, window=WINDOWS),
    output:
        json="results/selection/overall.json",
        markdown="results/selection/overall.md",
        plot="results/selection/overall.png",
    params:
        spec=group_spec("selection"),
    log:
        "logs/selection/overall.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("aggregate_selection_overall", 10),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.aggregate_selection --per-window {input.per_window} "
        "--title 'all symbols' --spec {params.spec:q} --out-json {output.json} "
        "--out-markdown {output.markdown} --out-plot {output.plot} > {log} 2>&1"
