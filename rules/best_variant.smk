# Rank the stage-1 variants per (symbol, window, side); summaries per symbol and overall.
# Code: workflow_scripts/best_variant.py. An aggregate rule, not a checkpoint: every path is known when planning.


rule pick_best_variant:
    input:
        stage1="results/stage1/{symbol}/w{window}",
        evaluations="results/evaluation/stage1/{symbol}/w{window}",
    params:
        targets=lambda wc: " ".join(targets_of_side(wc.side)),
    output:
        choice="results/best_variant/{symbol}/w{window}/{side}.json",
    log:
        "logs/best_variant/{symbol}/w{window}/{side}.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min("pick_best_variant", 5),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.pick_best_variant --symbol {wildcards.symbol} "
        "--window {wildcards.window} --side {wildcards.side} --stage1-dir {input.stage1} "
        "--evaluation-dir {input.evaluations} --targets-ids {params.targets} --out {output.choice} > {log} 2>&1"


rule summarize_symbol:
    input:
        choices=expand(
            "results/best_variant/{{symbol}}/w{window}/{side}.json", window=WINDOWS, side=SIDES
        ),
    output:
        parquet="results/best_variant/{symbol}/summary.parquet",
        markdown="results/best_variant/{symbol}/summary.md",
    log:
        "logs/best_variant/{symbol}/summary.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min("summarize_symbol", 5),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.summarize_best_variants --choices {input.choices} "
        "--title 'Best stage-1 variant per window and side: {wildcards.symbol}' "
        "--out-parquet {output.parquet} --out-markdown {output.markdown} > {log} 2>&1"


rule summarize_best_variants:
    input:
        choices=expand(
            "results/best_variant/{symbol}/w{window}/{side}.json",
            symbol=SYMBOLS,
            window=WINDOWS,
            side=SIDES,
        ),
    output:
        parquet="results/best_variant/summary.parquet",
        csv="results/best_variant/summary.csv",
        markdown="results/best_variant/summary.md",
        metrics="results/metrics/stage1.json",
    log:
        "logs/best_variant/summary.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min("summarize_best_variants", 5),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.summarize_best_variants --choices {input.choices} "
        "--title 'Best stage-1 variant per symbol, window and side' --out-parquet {output.parquet} "
        "--out-csv {output.csv} --out-markdown {output.markdown} --out-metrics {output.metrics} > {log} 2>&1"
