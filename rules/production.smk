# Production training of every best combination with its tuned parameters, evaluated like stage 1 on the
# untouched test segment, written as the production folder of docs/REGISTRY.md. Code: workflow_scripts/production.py.
# A torch model (model=torch_mlp / torch_transformer) asks for one GPU: the Slurm profile turns `gpu` into --gpus=1;
# locally the resource is only counted and training picks cuda, then mps, then cpu (torch_models.select_device).
TORCH_GPU = {"gpu": 1} if CFG["model"]["kind"].startswith("torch_") else {}


rule train_production:
    input:
        **combination_inputs("results/tuning/stage4/{symbol}/w{window}/{side}.json"),
        stage2="results/tuning/stage2/w{window}.json",
        stage3="results/tuning/stage3/{symbol}/w{window}/{side}.json",
        bars="results/ingest/{symbol}.parquet",
        costs="results/costs/{symbol}.json",
    output:
        folder=directory("results/production/{symbol}/w{window}/{side}"),
    params:
        spec=production_spec(),
        encoder=ENCODER_OPTION,
    log:
        "logs/production/{symbol}/w{window}/{side}.log",
    benchmark:
        "results/benchmarks/production/{symbol}/w{window}/{side}.tsv"
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=runtime_min("train_production", 60),
        **TORCH_GPU,
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.train_production --choice {input.choice} "
        "--stage2 {input.stage2} --stage3 {input.stage3} --stage4 {input.previous} --features {input.features} "
        "--selected {input.selected} --targets {input.targets} --split {input.split} --bars {input.bars} "
        "--costs {input.costs} {params.encoder} --spec {params.spec:q} --threads {threads} "
        "--outdir {output.folder} > {log} 2>&1"


rule summarize_production:
    input:
        folders=expand(
            "results/production/{symbol}/w{window}/{side}", symbol=SYMBOLS, window=WINDOWS, side=SIDES
        ),
    output:
        parquet="results/production/summary.parquet",
        markdown="results/production/summary.md",
    log:
        "logs/production/summary.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("summarize_production", 10),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.summarize_production --folders {input.folders} "
        "--out-parquet {output.parquet} --out-markdown {output.markdown} > {log} 2>&1"
