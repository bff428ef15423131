# Tuning stages 2-4 (stage 1 is rules/stage1.smk): Optuna studies in journal files beside the results, budgets
# from config/tuning. Code: workflow_scripts/tuning_stages.py on tuning.py (docs/TUNING.md). The journal is not
# an output: Snakemake deletes the outputs of a failed job, and the journal must survive so a rerun resumes.
N_COMBINATIONS = len(SYMBOLS) * len(WINDOWS) * len(SIDES)


rule tune_stage2:
    input:
        choices=expand("results/best_variant/{symbol}/w{{window}}/{side}.json", symbol=SYMBOLS, side=SIDES),
        features=expand("results/features/{symbol}.parquet", symbol=SYMBOLS),
        selected=expand("results/selection/{symbol}/selected.json", symbol=SYMBOLS),
        targets=expand("results/targets/{symbol}/w{{window}}.parquet", symbol=SYMBOLS),
        splits=expand("results/splits/{symbol}/w{{window}}.json", symbol=SYMBOLS),
        encoder=ENCODER_FILES,
    output:
        result="results/tuning/stage2/w{window}.json",
    params:
        spec=group_spec("tuning"),
        symbols=" ".join(SYMBOLS),
        n_studies=len(WINDOWS),
        encoder=ENCODER_OPTION,
    log:
        "logs/tuning/stage2/w{window}.log",
    benchmark:
        "results/benchmarks/tuning/stage2/w{window}.tsv"
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=runtime_min("tune_stage2", 60),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.tune_stage --stage stage2 "
        "--symbols {params.symbols} --choices {input.choices} --features {input.features} "
        "--selected {input.selected} --targets {input.targets} --splits {input.splits} {params.encoder} "
        "--spec {params.spec:q} --n-studies {params.n_studies} --threads {threads} "
        "--journal results/tuning/stage2/w{wildcards.window}.journal --out {output.result} > {log} 2>&1"


rule tune_stage3:
    input:
        **combination_inputs("results/tuning/stage2/w{window}.json"),
    output:
        result="results/tuning/stage3/{symbol}/w{window}/{side}.json",
    params:
        spec=group_spec("tuning"),
        n_studies=N_COMBINATIONS,
        encoder=ENCODER_OPTION,
    log:
        "logs/tuning/stage3/{symbol}/w{window}/{side}.log",
    benchmark:
        "results/benchmarks/tuning/stage3/{symbol}/w{window}/{side}.tsv"
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=runtime_min("tune_stage3", 60),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.tune_stage --stage stage3 "
        "--symbols {wildcards.symbol} --choices {input.choice} --features {input.features} "
        "--selected {input.selected} --targets {input.targets} --splits {input.split} {params.encoder} "
        "--previous {input.previous} --spec {params.spec:q} --n-studies {params.n_studies} --threads {threads} "
        "--journal results/tuning/stage3/{wildcards.symbol}/w{wildcards.window}/{wildcards.side}.journal "
        "--out {output.result} > {log} 2>&1"


rule tune_stage4:
    input:
        **combination_inputs("results/tuning/stage3/{symbol}/w{window}/{side}.json"),
    output:
        result="results/tuning/stage4/{symbol}/w{window}/{side}.json",
    params:
        spec=group_spec("tuning"),
        n_studies=N_COMBINATIONS,
        encoder=ENCODER_OPTION,
    log:
        "logs/tuning/stage4/{symbol}/w{window}/{side}.log",
    benchmark:
        "results/benchmarks/tuning/stage4/{symbol}/w{window}/{side}.tsv"
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=runtime_min("tune_stage4", 60),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.tune_stage --stage stage4 "
        "--symbols {wildcards.symbol} --choices {input.choice} --features {input.features} "
        "--selected {input.selected} --targets {input.targets} --splits {input.split} {params.encoder} "
        "--previous {input.previous} --spec {params.spec:q} --n-studies {params.n_studies} --threads {threads} "
        "--journal results/tuning/stage4/{wildcards.symbol}/w{wildcards.window}/{wildcards.side}.journal "
        "--out {output.result} > {log} 2>&1"
