# Costs fetched before training, then cost-aware evaluation of every stage-1 variant on the test segment, gates,
# grades and VINs. Code: workflow_scripts/variant_evaluation.py (on top of evaluation.py, costs.py, gates.py,
# grades.py, vin.py). Evaluation reads saved predictions: a cost change reruns it without retraining.


rule snapshot_costs:
    output:
        costs="results/costs/{symbol}.json",
    params:
        table=symbol_cost_table,
    log:
        "logs/costs/{symbol}.log",
    threads: 1
    resources:
        mem_mb=300,
        runtime=runtime_min("snapshot_costs", 5),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.snapshot_costs --symbol {wildcards.symbol} "
        "--table {params.table:q} --out {output.costs} > {log} 2>&1"


rule evaluate_stage1:
    input:
        bars="results/ingest/{symbol}.parquet",
        targets="results/targets/{symbol}/w{window}.parquet",
        split="results/splits/{symbol}/w{window}.json",
        costs="results/costs/{symbol}.json",
        stage1="results/stage1/{symbol}/w{window}",
    output:
        results=directory("results/evaluation/stage1/{symbol}/w{window}"),
    params:
        spec=evaluation_spec(),
        targets=" ".join(TARGETS),
    log:
        "logs/evaluation/stage1/{symbol}/w{window}.log",
    benchmark:
        "results/benchmarks/evaluation/stage1/{symbol}/w{window}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min("evaluate_stage1", 30),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.evaluate_stage1 --symbol {wildcards.symbol} "
        "--window {wildcards.window} --bars {input.bars} --targets {input.targets} --split {input.split} "
        "--costs {input.costs} --stage1-dir {input.stage1} --targets-ids {params.targets} "
        "--spec {params.spec:q} --outdir {output.results} > {log} 2>&1"


rule plot_best_variant:
    input:
        choice="results/best_variant/{symbol}/w{window}/{side}.json",
        bars="results/ingest/{symbol}.parquet",
        targets="results/targets/{symbol}/w{window}.parquet",
        split="results/splits/{symbol}/w{window}.json",
        costs="results/costs/{symbol}.json",
        stage1="results/stage1/{symbol}/w{window}",
        evaluations="results/evaluation/stage1/{symbol}/w{window}",
    output:
        plot="results/evaluation/plots/{symbol}/w{window}/{side}.png",
    params:
        spec=evaluation_spec(),
    log:
        "logs/evaluation/plots/{symbol}/w{window}/{side}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("plot_best_variant", 10),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.plot_best_variant --choice {input.choice} --bars {input.bars} "
        "--targets {input.targets} --split {input.split} --costs {input.costs} "
        "--stage1-dir {input.stage1} --evaluation-dir {input.evaluations} --spec {params.spec:q} "
        "--out {output.plot} > {log} 2>&1"


rule summarize_evaluation:
    input:
        evaluations=expand("results/evaluation/stage1/{symbol}/w{window}", symbol=SYMBOLS, window=WINDOWS),
        choices=expand(
            "results/best_variant/{symbol}/w{window}/{side}.json",
            symbol=SYMBOLS,
            window=WINDOWS,
            side=SIDES,
        ),
        plots=expand(
            "results/evaluation/plots/{symbol}/w{window}/{side}.png",
            symbol=SYMBOLS,
            window=WINDOWS,
            side=SIDES,
        ),
    output:
        json="results/evaluation/summary.json",
        markdown="results/evaluation/summary.md",
    params:
        grades=as_json(CFG["grades"]),
    log:
        "logs/evaluation/summary.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("summarize_evaluation", 10),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.summarize_evaluation --evaluations {input.evaluations} "
        "--choices {input.choices} --grades {params.grades:q} --out-json {output.json} "
        "--out-markdown {output.markdown} > {log} 2>&1"
