# Optional ensemble stage (config/ensemble, `--config ensemble=enabled`; off by default): per (symbol, side) the
# production models of every window combined (average, or a stacker fitted on validation rows only) into one
# production-style folder that register_models registers beside the single models. Code:
# workflow_scripts/ensemble_production.py on ensembles.py; docs/TORCH_MODELS.md "Ensembles".
# rules/common.smk: ENSEMBLE_FOLDERS (what register_models reads) is [] unless enabled.


rule fit_ensemble:
    input:
        production=expand("results/production/{{symbol}}/w{window}/{{side}}", window=WINDOWS),
        features="results/features/{symbol}.parquet",
        targets=expand("results/targets/{{symbol}}/w{window}.parquet", window=WINDOWS),
        splits=expand("results/splits/{{symbol}}/w{window}.json", window=WINDOWS),
        bars="results/ingest/{symbol}.parquet",
        costs="results/costs/{symbol}.json",
    output:
        folder=directory("results/ensemble/{symbol}/{side}"),
    params:
        spec=ensemble_spec(),
        windows=" ".join(str(w) for w in WINDOWS),
    log:
        "logs/ensemble/{symbol}/{side}.log",
    benchmark:
        "results/benchmarks/ensemble/{symbol}/{side}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("fit_ensemble", 30),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.fit_ensemble "
        "--windows {params.windows} --production {input.production} --features {input.features} "
        "--targets {input.targets} --splits {input.splits} --bars {input.bars} --costs {input.costs} "
        "--spec {params.spec:q} --outdir {output.folder} > {log} 2>&1"
