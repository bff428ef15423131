# Stage 1: every target variant of one (symbol, window), default parameters. Code: workflow_scripts/stage1.py
# One job per (symbol, window) looping over its targets, outputs still per target (docs/ARCHITECTURE.md).


rule train_stage1:
    input:
        features="results/features/{symbol}.parquet",
        selected="results/selection/{symbol}/selected.json",
        targets="results/targets/{symbol}/w{window}.parquet",
        split="results/splits/{symbol}/w{window}.json",
    output:
        models=expand("results/stage1/{{symbol}}/w{{window}}/{target}/model.txt", target=TARGETS),
        metrics=expand("results/stage1/{{symbol}}/w{{window}}/{target}/metrics.json", target=TARGETS),
        indices=expand("results/stage1/{{symbol}}/w{{window}}/{target}/split_indices.json", target=TARGETS),
        predictions=expand(
            "results/stage1/{{symbol}}/w{{window}}/{target}/predictions.parquet", target=TARGETS
        ),
        logs=expand("results/stage1/{{symbol}}/w{{window}}/{target}/training_log.json", target=TARGETS),
    params:
        spec=as_json(CFG["stage1"]),
        targets=" ".join(TARGETS),
        outdir=lambda wc: f"results/stage1/{wc.symbol}/w{wc.window}",
    log:
        "logs/stage1/{symbol}/w{window}.log",
    benchmark:
        "results/benchmarks/stage1/{symbol}/w{window}.tsv"
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=45,
    shell:
        "{PYTHON} -m workflow_scripts.entries.train_stage1 --features {input.features} "
        "--feature-list {input.selected} "
        "--targets {input.targets} --split {input.split} --targets-ids {params.targets} "
        "--spec {params.spec:q} --threads {threads} --outdir {params.outdir} > {log} 2>&1"
