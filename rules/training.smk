# Training: stage 1 (every target variant, default parameters), the optional shared encoder, tuning stages 2-4,
# production training of every best combination and the optional ensembles. Code: workflow_scripts/training/
# (stage1.py, tuning.py, tuning_stages.py, production.py, ensemble_production.py) on workflow_scripts/models/;
# entries in workflow_scripts/training/jobs.py. docs/TUNING.md, docs/TORCH_MODELS.md.
#
# Shared encoder (config/encoder): fitted once on the pooled TRAINING rows of every coin, its outputs appended to
# each coin's features for tuning and production; one JSON file whose sha256 is the encoder version.
ENCODER_KIND = CFG["encoder"]["kind"]
# Tuning: Optuna studies in journal files beside the results (the result path with .journal), budgets from
# config/tuning. The journal is not an output: Snakemake deletes the outputs of a failed job, and the journal
# must survive so a rerun resumes.
# A model kind that can use a GPU (models/kinds.py: torch_mlp, torch_transformer) asks for one: the Slurm profile turns `gpu` into
# --gpus=1; locally the resource is only counted and training picks cuda, then mps, then cpu.
TORCH_GPU = {"gpu": 1} if KINDS[CFG["model"]["kind"]].uses_gpu else {}


# One job per (symbol, window) looping over its targets; one folder per target inside one declared directory
# output keeps planning linear in jobs, not in files (docs/ARCHITECTURE.md, "Job granularity").
rule train_stage1:
    input:
        features="results/features/{symbol}.parquet",
        selected="results/selection/{symbol}/selected.json",
        targets="results/targets/{symbol}/w{window}.parquet",
        split="results/splits/{symbol}/w{window}.json",
    output:
        variants=directory("results/stage1/{symbol}/w{window}"),
    log:
        "logs/stage1/{symbol}/w{window}.log",
    benchmark:
        "results/benchmarks/stage1/{symbol}/w{window}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=runtime_min("train_stage1", 45),
    params:
        **job("training.train_stage1", spec=CFG["stage1"], targets=TARGETS),
    shell:
        JOB


rule fit_shared_encoder:
    input:
        features=expand("results/features/base/{symbol}.parquet", symbol=SYMBOLS),
        splits=pairs("results/splits/{symbol}/w{window}.json"),
    output:
        encoder=f"results/encoder/{ENCODER_KIND}.json",
    log:
        f"logs/encoder/{ENCODER_KIND}.log",
    benchmark:
        f"results/benchmarks/encoder/{ENCODER_KIND}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("fit_shared_encoder", 30),
    params:
        **job(
            "training.fit_shared_encoder", spec=group_spec("encoder"), symbols=SYMBOLS, windows_of=WINDOWS_OF
        ),
    shell:
        JOB


rule tune_stage2:
    input:
        choices=stage2_inputs("results/best_variant/{symbol}/w{window}/{side}.json", side=SIDES),
        features=stage2_inputs("results/features/{symbol}.parquet"),
        selected=stage2_inputs("results/selection/{symbol}/selected.json"),
        targets=stage2_inputs("results/targets/{symbol}/w{window}.parquet"),
        splits=stage2_inputs("results/splits/{symbol}/w{window}.json"),
        encoder=ENCODER_FILES,
    output:
        result="results/tuning/stage2/w{window}.json",
    log:
        "logs/tuning/stage2/w{window}.log",
    benchmark:
        "results/benchmarks/tuning/stage2/w{window}.tsv"
    priority: 4
    conda:
        "../envs/swingflow.yaml"
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=runtime_min("tune_stage2", 60),
    params:
        **job(
            "training.tune_stage2",
            spec=tuning_spec("stage2"),
            symbols=presigned(lambda wildcards: stage2_symbols(wildcards.window)),
        ),
    shell:
        JOB


# Priorities (tune_stage2 4, stage 3 3, stage 4 2, fit_production 1, every other rule 0): among the jobs ready
# to run, an earlier step of the tuning chain goes first, so every (symbol, window)'s chain is started before
# any is finished and the last minutes of a run on few cores are not one long chain alone (benchmarks/demo.py).
# Stages 3 and 4 and production: one job per (symbol, window) runs both sides one after the other (per_side
# paths; docs/ARCHITECTURE.md, "Job granularity"). Each side keeps its own study journal, result and folder, so
# a job stopped half-way resumes each study where its journal ends.
rule tune_stage3:
    input:
        **combination_inputs("results/tuning/stage2/w{window}.json"),
    output:
        result=per_side("results/tuning/stage3/{symbol}/w{window}/{side}.json"),
    log:
        "logs/tuning/stage3/{symbol}/w{window}.log",
    benchmark:
        "results/benchmarks/tuning/stage3/{symbol}/w{window}.tsv"
    priority: 3
    conda:
        "../envs/swingflow.yaml"
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=runtime_min("tune_stage3", 120),
    params:
        **job("training.tune_stage3", sides=SIDES, spec=tuning_spec("stage3")),
    shell:
        JOB


rule tune_stage4:
    input:
        **combination_inputs(per_side("results/tuning/stage3/{symbol}/w{window}/{side}.json")),
    output:
        result=per_side("results/tuning/stage4/{symbol}/w{window}/{side}.json"),
    log:
        "logs/tuning/stage4/{symbol}/w{window}.log",
    benchmark:
        "results/benchmarks/tuning/stage4/{symbol}/w{window}.tsv"
    priority: 2
    conda:
        "../envs/swingflow.yaml"
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=runtime_min("tune_stage4", 120),
    params:
        **job("training.tune_stage4", sides=SIDES, spec=tuning_spec("stage4")),
    shell:
        JOB


# Production: fit_production trains every best combination with its tuned parameters (the evaluated model and
# its deployment refit; no cost, gate or grade enters a fit), evaluate_production evaluates the fit like stage 1
# on the untouched test segment with the cost snapshot and writes the production folder of docs/REGISTRY.md. A
# cost or gate change therefore re-evaluates without refitting.
rule fit_production:
    input:
        **combination_inputs(per_side("results/tuning/stage4/{symbol}/w{window}/{side}.json")),
        stage2="results/tuning/stage2/w{window}.json",
        stage3=per_side("results/tuning/stage3/{symbol}/w{window}/{side}.json"),
    output:
        fit=directory(per_side("results/production_fit/{symbol}/w{window}/{side}")),
    log:
        "logs/production_fit/{symbol}/w{window}.log",
    benchmark:
        "results/benchmarks/production_fit/{symbol}/w{window}.tsv"
    priority: 1
    conda:
        "../envs/swingflow.yaml"
    threads: THREADS
    resources:
        **TORCH_GPU,
        mem_mb=4000,
        runtime=runtime_min("fit_production", 120),
    params:
        **job("training.fit_production", sides=SIDES, model=CFG["model"]),
    shell:
        JOB


rule evaluate_production:
    input:
        **combination_inputs(per_side("results/tuning/stage4/{symbol}/w{window}/{side}.json")),
        stage2="results/tuning/stage2/w{window}.json",
        stage3=per_side("results/tuning/stage3/{symbol}/w{window}/{side}.json"),
        fit=per_side("results/production_fit/{symbol}/w{window}/{side}"),
        bars="results/ingest/{symbol}.parquet",
        costs="results/costs/{symbol}.json",
        # every window of each (symbol, side) slot: its DSR counts all of them (training/trials.py)
        slot_reports=symbol_windows("results/best_variant/{symbol}/w{w}/{side}.report.json", side=SIDES),
        slot_stage2=symbol_windows("results/tuning/stage2/w{w}.json"),
        slot_stage3=symbol_windows("results/tuning/stage3/{symbol}/w{w}/{side}.json", side=SIDES),
        slot_stage4=symbol_windows("results/tuning/stage4/{symbol}/w{w}/{side}.json", side=SIDES),
    output:
        folder=directory(per_side("results/production/{symbol}/w{window}/{side}")),
    log:
        "logs/production/{symbol}/w{window}.log",
    benchmark:
        "results/benchmarks/production/{symbol}/w{window}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("evaluate_production", 60),
    params:
        **job(
            "training.evaluate_production",
            sides=SIDES,
            spec=production_spec,
            windows=windows_of_symbol,
            ensemble_candidates=ensemble_candidates(CFG["ensemble"]),
        ),
    shell:
        JOB


# Seconds-long: runs in the Snakemake process's host, not as a cluster job (docs/OPERATIONS.md).
localrules:
    summarize_production,


rule summarize_production:
    input:
        folders=pairs("results/production/{symbol}/w{window}/{side}", side=SIDES),
    output:
        parquet="results/production/summary.parquet",
        markdown="results/production/summary.md",
    log:
        "logs/production/summary.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("summarize_production", 10),
    params:
        **job("training.summarize_production"),
    shell:
        JOB


# Optional ensembles (config/ensemble, off by default): per (symbol, side) the production models of every window
# combined (average, or a stacker fitted on validation rows only) into one production-style folder that
# register_models registers beside the single models. common.smk: ENSEMBLE_FOLDERS is [] unless enabled.
rule fit_ensemble:
    input:
        production=symbol_windows("results/production/{symbol}/w{w}/{side}"),
        features="results/features/{symbol}.parquet",
        targets=symbol_windows("results/targets/{symbol}/w{w}.parquet"),
        splits=symbol_windows("results/splits/{symbol}/w{w}.json"),
        bars="results/ingest/{symbol}.parquet",
        costs="results/costs/{symbol}.json",
    output:
        folder=directory("results/ensemble/{symbol}/{side}"),
    log:
        "logs/ensemble/{symbol}/{side}.log",
    benchmark:
        "results/benchmarks/ensemble/{symbol}/{side}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("fit_ensemble", 30),
    params:
        **job("training.fit_ensemble", spec=ensemble_spec(), windows=windows_of_symbol),
    shell:
        JOB
