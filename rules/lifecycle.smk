# The model lifecycle after registration (docs/LIFECYCLE.md): paper trading of the deployed slots. Per symbol,
# the bars newer than each deployed model's training data are replayed through its deployed (refit) model with
# its evaluation's trading rule, threshold and cost snapshot, into an append-only ledger per slot and model;
# then the champion rules read the ledgers (registry.compare, registry.demotion): a challenger better on the
# common paper bars replaces its champion, a deployed champion below the paper floor is demoted (notified).
# Code: workflow_scripts/lifecycle/ (paper.py; entries in jobs.py), the registry glue
# workflow_scripts/registry/paper_trading.py. The ledgers live in the registry (<registry>/paper/, outside
# results/, they outlive runs); the declared output is this run's view of them. Slots are deployed with
# `swingflow deploy` (the registry is not a Snakemake input: after a deploy or new bars, refresh with
# `snakemake -R paper_trade` or `swingflow paper`).


rule paper_trade:
    input:
        roster="results/registry/roster.json",
        bars=features_bars,  # the coin's and its cross-coin basket's: what its models' features read
    output:
        summary="results/lifecycle/paper/{symbol}.json",
    log:
        "logs/lifecycle/paper/{symbol}.log",
    benchmark:
        "results/benchmarks/lifecycle/paper/{symbol}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("paper_trade", 20),
    params:
        **job(
            "lifecycle.paper_trade",
            registry=registry_dir(),
            ledger=f"{registry_dir()}/paper",
            spec=group_spec("registry"),
            notifications=CFG["env"]["notifications"],
        ),
    shell:
        JOB
