# The model registry: every production folder of the run is registered (semantic versions, hashes), champion or
# challenger per (symbol, side) on a common recent window, run records; then the champions predict each symbol's
# whole history. Code: workflow_scripts/registry_run.py on registry.py; predictions.py. docs/REGISTRY.md.
# The registry folder (env.storage.registry_dir) lives outside results/ and outlives runs; the declared outputs
# under results/registry/ are this run's view of it.


rule register_models:
    input:
        production=expand(
            "results/production/{symbol}/w{window}/{side}", symbol=SYMBOLS, window=WINDOWS, side=SIDES
        ),
        ensembles=ENSEMBLE_FOLDERS,  # rules/ensemble.smk, [] unless ensemble.enabled
        features=expand("results/features/{symbol}.parquet", symbol=SYMBOLS),
        targets=expand("results/targets/{symbol}/w{window}.parquet", symbol=SYMBOLS, window=WINDOWS),
        splits=expand("results/splits/{symbol}/w{window}.json", symbol=SYMBOLS, window=WINDOWS),
    output:
        status="results/registry/run_status.json",
        roster="results/registry/roster.json",
    params:
        registry=registry_dir(),
        spec=group_spec("registry"),
    log:
        "logs/registry/register_models.log",
    benchmark:
        "results/benchmarks/registry/register_models.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("register_models", 30),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.register_models --registry {params.registry:q} "
        "--production {input.production} {input.ensembles} --features {input.features} --targets {input.targets} "
        "--splits {input.splits} --spec {params.spec:q} --out-status {output.status} "
        "--out-roster {output.roster} > {log} 2>&1"


rule predict_batch:
    input:
        features="results/features/{symbol}.parquet",
        roster="results/registry/roster.json",
    output:
        predictions="results/predictions/{symbol}.parquet",
    params:
        registry=registry_dir(),
    log:
        "logs/predictions/{symbol}.log",
    benchmark:
        "results/benchmarks/predictions/{symbol}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("predict_batch", 20),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.predict_batch --registry {params.registry:q} "
        "--symbol {wildcards.symbol} --features {input.features} --out {output.predictions} > {log} 2>&1"
