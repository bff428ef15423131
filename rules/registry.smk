# The model registry: every production folder of the run is registered (semantic versions, hashes), champion or
# challenger per (symbol, side), run records; then the champions predict each symbol's whole history; optionally
# the production models go to MLflow (env.tracking: mlflow). Code: workflow_scripts/registry/ (store.py, runs.py,
# predictions.py, tracking.py), entries in workflow_scripts/registry/jobs.py. docs/REGISTRY.md, docs/OPERATIONS.md.
# The registry folder (env.storage.registry_dir) and the MLflow store (mlflow/<env>/) live outside results/ and
# outlive runs; the declared outputs under results/ are this run's view of them.


rule register_models:
    input:
        production=pairs("results/production/{symbol}/w{window}/{side}", side=SIDES),
        ensembles=ENSEMBLE_FOLDERS,  # rules/training.smk fit_ensemble, [] unless ensemble.enabled
        features=expand("results/features/{symbol}.parquet", symbol=SYMBOLS),
        targets=pairs("results/targets/{symbol}/w{window}.parquet"),
        splits=pairs("results/splits/{symbol}/w{window}.json"),
    output:
        status="results/registry/run_status.json",
        roster="results/registry/roster.json",
        decisions="results/registry/decisions.json",  # test-free: no VIN, no time (docs/LIFECYCLE.md)
    log:
        "logs/registry/register_models.log",
    benchmark:
        "results/benchmarks/registry/register_models.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("register_models", 30),
    params:
        **job("registry.register_models", registry=registry_dir(), spec=group_spec("registry")),
    shell:
        JOB


# The RL line's packaged models (rules/agents.smk package_agent_models, only with agents on) into the same
# index: a step of its own, so the swing run's id and decisions.json do not change when agents are switched on.
rule register_agent_models:
    input:
        folder="results/agents/models/{symbol}",
    output:
        record="results/registry/agents/{symbol}.json",
    log:
        "logs/registry/agents/{symbol}.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min("register_agent_models", 10),
    params:
        **job("registry.register_agent_models", registry=registry_dir(), spec=group_spec("registry")),
    shell:
        JOB


rule predict_batch:
    input:
        features="results/features/{symbol}.parquet",
        roster="results/registry/roster.json",
    output:
        predictions="results/predictions/{symbol}.parquet",
    log:
        "logs/predictions/{symbol}.log",
    benchmark:
        "results/benchmarks/predictions/{symbol}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("predict_batch", 20),
    params:
        **job("registry.predict_batch", registry=registry_dir()),
    shell:
        JOB


rule track_production:
    input:
        production=pairs("results/production/{symbol}/w{window}/{side}", side=SIDES),
    output:
        runs="results/tracking/mlflow_runs.json",
    log:
        "logs/tracking/track_production.log",
    benchmark:
        "results/benchmarks/tracking/track_production.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min("track_production", 20),
    params:
        **job(
            "registry.track_production",
            tracking_dir=f"mlflow/{CFG['env']['name']}",
            experiment=f"swingflow-{CFG['env']['name']}",
        ),
    shell:
        JOB
