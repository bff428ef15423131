# Stage 1: every target variant of one (symbol, window), default parameters. Code: workflow_scripts/stage1.py
# One job per (symbol, window) looping over its targets, outputs still per target (docs/ARCHITECTURE.md).


rule train_stage1:
    input:
        features="results/features/{symbol}.parquet",
        selected="results/selection/{symbol}/selected.json",
        targets="results/targets/{symbol}/w{window}.parquet",
        split="results/splits/{symbol}/w{window}.json",
    output:
        # One folder per (symbol, window) holding one folder per target: a single declared output keeps
        # planning linear in jobs, not in files (docs/ARCHITECTURE.md, "Job granularity").
        variants=directory("results/stage1/{symbol}/w{window}"),
    params:
        spec=as_json(CFG["stage1"]),
        targets=" ".join(TARGETS),
    log:
        "logs/stage1/{symbol}/w{window}.log",
    benchmark:
        "results/benchmarks/stage1/{symbol}/w{window}.tsv"
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=runtime_min("train_stage1", 45),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.train_stage1 --features {input.features} "
        "--feature-list {input.selected} "
        "--targets {input.targets} --split {input.split} --targets-ids {params.targets} "
        "--spec {params.spec:q} --threads {threads} --outdir {output.variants} > {log} 2>&1"
