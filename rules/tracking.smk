# Optional experiment tracking (env.tracking: mlflow): the run's production models -> MLflow, sqlite backend in
# mlflow/<env>/ (outside results/, like the registry). Code: workflow_scripts/tracking.py. docs/OPERATIONS.md.


rule track_production:
    input:
        production=expand(
            "results/production/{symbol}/w{window}/{side}", symbol=SYMBOLS, window=WINDOWS, side=SIDES
        ),
    output:
        runs="results/tracking/mlflow_runs.json",
    params:
        tracking_dir=f"mlflow/{CFG['env']['name']}",
        experiment=f"swingflow-{CFG['env']['name']}",
    log:
        "logs/tracking/track_production.log",
    benchmark:
        "results/benchmarks/tracking/track_production.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min("track_production", 20),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.track_production "
        "--production {input.production} --tracking-dir {params.tracking_dir:q} --experiment {params.experiment:q} "
        "--out {output.runs} > {log} 2>&1"
