# The sections of `snakemake --report report.html`: data quality, selected features, tuning history, evaluation
# after costs, champions. One job renders them all (cheap: reads JSON and PNGs), one named HTML output per
# section. Code: workflow_scripts/report/sections.py, entry in workflow_scripts/report/jobs.py.
# docs/OPERATIONS.md ("Reports").


# Seconds-long jobs run in the Snakemake process's host, not as one cluster job each (docs/OPERATIONS.md).
localrules:
    render_report,


rule render_report:
    input:
        quality=expand("results/ingest/{symbol}.quality.json", symbol=SYMBOLS),
        selected=expand("results/selection/{symbol}/selected.json", symbol=SYMBOLS),
        importance=expand("results/selection/{symbol}/importance.png", symbol=SYMBOLS),
        tuning=expand("results/tuning/stage2/w{window}.json", window=TRAINED_WINDOWS)
        + pairs("results/tuning/stage{stage}/{symbol}/w{window}/{side}.json", stage=[3, 4], side=SIDES),
        summary="results/evaluation/summary.json",
        reports=pairs("results/best_variant/{symbol}/w{window}/{side}.report.json", side=SIDES),
        evaluations=pairs("results/evaluation/stage1/{symbol}/w{window}"),
        plots=pairs("results/evaluation/plots/{symbol}/w{window}/{side}.png", side=SIDES),
        roster="results/registry/roster.json",
    output:
        quality=report("results/report/quality.html", category="1. Data quality per coin"),
        selection=report("results/report/selection.html", category="2. Selected features and importances"),
        tuning=report("results/report/tuning.html", category="3. Tuning history"),
        evaluation=report("results/report/evaluation.html", category="4. Evaluation after costs"),
        champions=report("results/report/champions.html", category="5. Champions"),
    log:
        "logs/report/render_report.log",
    benchmark:
        "results/benchmarks/report/render_report.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min("render_report", 10),
    params:
        **job("report.render_report"),
    shell:
        JOB
