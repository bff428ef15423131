# Optional shared encoder (config/encoder): fitted once on the pooled TRAINING rows of every coin, its outputs
# appended to each coin's features for tuning and production. `kind` pca or autoencoder picks the branch of the
# one entry; either way one JSON file results/encoder/{kind}.json whose sha256 is the encoder version.
# Code: workflow_scripts/shared_encoder.py, autoencoder_encoder.py.
# rules/common.smk: ENCODER_FILES (what tuning and production read) follows config/encoder `kind`.
ENCODER_KIND = CFG["encoder"]["kind"]


rule fit_shared_encoder:
    input:
        features=expand("results/features/base/{symbol}.parquet", symbol=SYMBOLS),
        splits=expand("results/splits/{symbol}/w{window}.json", symbol=SYMBOLS, window=WINDOWS),
    output:
        encoder=f"results/encoder/{ENCODER_KIND}.json",
    params:
        spec=group_spec("encoder"),
        symbols=" ".join(SYMBOLS),
        windows=" ".join(str(w) for w in WINDOWS),
    log:
        f"logs/encoder/{ENCODER_KIND}.log",
    benchmark:
        f"results/benchmarks/encoder/{ENCODER_KIND}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("fit_shared_encoder", 30),
    conda:
        "../envs/swingflow.yaml"
    shell:
        "python -m workflow_scripts.timeout_guard {resources.runtime} -- python -m workflow_scripts.entries.fit_shared_encoder --symbols {params.symbols} "
        "--windows {params.windows} --features {input.features} --splits {input.splits} --spec {params.spec:q} "
        "--out {output.encoder} > {log} 2>&1"
