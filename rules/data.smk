# Raw bars -> normalised parquet + data-quality report; chronological train/validation/test segments with purge
# and embargo. Code: workflow_scripts/data/ (ingest.py, splits.py), entries in workflow_scripts/data/jobs.py.


# Seconds-long jobs run in the Snakemake process's host, not as one cluster job each (docs/OPERATIONS.md).
localrules:
    split_segments,


rule ingest_bars:
    input:
        raw=raw_bars,
    output:
        bars="results/ingest/{symbol}.parquet",
        quality="results/ingest/{symbol}.quality.json",
    log:
        "logs/ingest/{symbol}.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("ingest_bars", 10),
    params:
        **job("data.ingest_bars", spec=ingest_spec()),
    shell:
        JOB


rule split_segments:
    input:
        bars="results/ingest/{symbol}.parquet",
    output:
        split="results/splits/{symbol}/w{window}.json",
    log:
        "logs/splits/{symbol}/w{window}.log",
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min("split_segments", 5),
    params:
        **job("data.split_segments", spec=split_spec),
    shell:
        JOB
