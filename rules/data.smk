# Raw bars -> normalised parquet + data-quality report; chronological train/validation/test segments with purge
# and embargo. Code: workflow_scripts/data/ (ingest.py, splits.py), entries in workflow_scripts/data/jobs.py.


rule ingest_bars:
    input:
        raw=raw_bars,
    output:
        bars="results/ingest/{symbol}.parquet",
        quality="results/ingest/{symbol}.quality.json",
    params:
        **job("data.ingest_bars", spec=ingest_spec()),
    log:
        "logs/ingest/{symbol}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("ingest_bars", 10),
    conda:
        "../envs/swingflow.yaml"
    shell:
        JOB


rule split_segments:
    input:
        bars="results/ingest/{symbol}.parquet",
    output:
        split="results/splits/{symbol}/w{window}.json",
    params:
        **job("data.split_segments", spec=split_spec),
    log:
        "logs/splits/{symbol}/w{window}.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=runtime_min("split_segments", 5),
    conda:
        "../envs/swingflow.yaml"
    shell:
        JOB
