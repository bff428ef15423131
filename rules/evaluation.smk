# Costs fetched before training, then cost-aware evaluation of every stage-1 variant on the test segment, gates,
# grades and VINs; the best variant per (symbol, window, side), its equity plot, and summaries per symbol and
# overall. Code: workflow_scripts/evaluation/ (variant_evaluation.py on top of backtest.py, costs.py, gates.py,
# grades.py, vin.py; best_variant.py), entries in workflow_scripts/evaluation/jobs.py. Evaluation reads saved
# predictions: a cost change reruns it without retraining. Best variants come from aggregate rules, not a
# checkpoint: every path is known when planning.


# Seconds-long jobs run in the Snakemake process's host, not as one cluster job each (docs/OPERATIONS.md).
localrules:
    snapshot_costs,
    pick_best_variant,
    report_best_variant,
    plot_best_variant,
    summarize_symbol,
    summarize_best_variants,
    summarize_evaluation,


rule snapshot_costs:
    output:
        costs="results/costs/{symbol}.json",
    log:
        "logs/costs/{symbol}.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=300,
        runtime=runtime_min("snapshot_costs", 5),
    params:
        **job("evaluation.snapshot_costs", table=symbol_cost_table),
    shell:
        JOB


rule evaluate_stage1:
    input:
        bars="results/ingest/{symbol}.parquet",
        targets="results/targets/{symbol}/w{window}.parquet",
        split="results/splits/{symbol}/w{window}.json",
        costs="results/costs/{symbol}.json",
        stage1="results/stage1/{symbol}/w{window}",
    output:
        results=directory("results/evaluation/stage1/{symbol}/w{window}"),
    log:
        "logs/evaluation/stage1/{symbol}/w{window}.log",
    benchmark:
        "results/benchmarks/evaluation/stage1/{symbol}/w{window}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min("evaluate_stage1", 30),
    params:
        **job("evaluation.evaluate_stage1", spec=evaluation_spec(), targets=TARGETS),
    shell:
        JOB


# The decision (validation only) and its report (test and after-cost facts) are separate files: a change
# that only alters the report (costs, gates, a test bar) leaves the choice, and so tuning and training, alone.
# One job per (symbol, window) does both sides (per_side paths; docs/ARCHITECTURE.md, "Job granularity").
rule pick_best_variant:
    input:
        stage1="results/stage1/{symbol}/w{window}",
    output:
        choice=per_side("results/best_variant/{symbol}/w{window}/{side}.json"),
    log:
        "logs/best_variant/{symbol}/w{window}/choices.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min("pick_best_variant", 5),
    params:
        **job("evaluation.pick_best_variant", sides=SIDES, targets=TARGETS_OF_SIDE),
    shell:
        JOB


rule report_best_variant:
    input:
        choice=per_side("results/best_variant/{symbol}/w{window}/{side}.json"),
        stage1="results/stage1/{symbol}/w{window}",
        evaluations="results/evaluation/stage1/{symbol}/w{window}",
    output:
        report=per_side("results/best_variant/{symbol}/w{window}/{side}.report.json"),
    log:
        "logs/best_variant/{symbol}/w{window}/reports.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min("report_best_variant", 5),
    params:
        **job("evaluation.report_best_variant", sides=SIDES, targets=TARGETS_OF_SIDE),
    shell:
        JOB


rule plot_best_variant:
    input:
        report=per_side("results/best_variant/{symbol}/w{window}/{side}.report.json"),
        bars="results/ingest/{symbol}.parquet",
        targets="results/targets/{symbol}/w{window}.parquet",
        split="results/splits/{symbol}/w{window}.json",
        costs="results/costs/{symbol}.json",
        stage1="results/stage1/{symbol}/w{window}",
        evaluations="results/evaluation/stage1/{symbol}/w{window}",
    output:
        plot=per_side("results/evaluation/plots/{symbol}/w{window}/{side}.png"),
    log:
        "logs/evaluation/plots/{symbol}/w{window}.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("plot_best_variant", 10),
    params:
        **job("evaluation.plot_best_variant", sides=SIDES, spec=evaluation_spec()),
    shell:
        JOB


rule summarize_symbol:
    input:
        reports=symbol_windows("results/best_variant/{symbol}/w{w}/{side}.report.json", side=SIDES),
    output:
        parquet="results/best_variant/{symbol}/summary.parquet",
        markdown="results/best_variant/{symbol}/summary.md",
    log:
        "logs/best_variant/{symbol}/summary.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min("summarize_symbol", 5),
    params:
        **job(
            "evaluation.summarize_symbol",
            title=lambda wc: f"Best stage-1 variant per window and side: {wc.symbol}",
        ),
    shell:
        JOB


rule summarize_best_variants:
    input:
        reports=pairs("results/best_variant/{symbol}/w{window}/{side}.report.json", side=SIDES),
    output:
        parquet="results/best_variant/summary.parquet",
        csv="results/best_variant/summary.csv",
        markdown="results/best_variant/summary.md",
        metrics="results/metrics/stage1.json",
    log:
        "logs/best_variant/summary.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min("summarize_best_variants", 5),
    params:
        **job("evaluation.summarize_best_variants", title="Best stage-1 variant per symbol, window and side"),
    shell:
        JOB


rule summarize_evaluation:
    input:
        evaluations=pairs("results/evaluation/stage1/{symbol}/w{window}"),
        reports=pairs("results/best_variant/{symbol}/w{window}/{side}.report.json", side=SIDES),
        plots=pairs("results/evaluation/plots/{symbol}/w{window}/{side}.png", side=SIDES),
    output:
        json="results/evaluation/summary.json",
        markdown="results/evaluation/summary.md",
    log:
        "logs/evaluation/summary.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("summarize_evaluation", 10),
    params:
        **job("evaluation.summarize_evaluation", grades=CFG["grades"], skipped=SKIPPED),
    shell:
        JOB
