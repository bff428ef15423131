# Raw bars -> normalised parquet + data-quality report. Code: workflow_scripts/ingest.py


rule ingest_bars:
    input:
        raw=raw_bars,
    output:
        bars="results/ingest/{symbol}.parquet",
        quality="results/ingest/{symbol}.quality.json",
    params:
        spec=ingest_spec(),
    log:
        "logs/ingest/{symbol}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("ingest_bars", 10),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.ingest_bars --raw {input.raw} --symbol {wildcards.symbol} "
        "--spec {params.spec:q} --out-bars {output.bars} --out-quality {output.quality} > {log} 2>&1"
