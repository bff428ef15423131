# The hierarchical RL line (issue 17, seeds 003/004; off by default, `--config agents=ppo` switches it on):
# a CNN-LSTM feature extractor per symbol, Optuna studies of stable-baselines3 agents per (symbol, agent kind)
# on a costed trading environment scored on validation only, and one test evaluation of the symbol's chosen
# agent. Code: workflow_scripts/agents/ (environment.py, cnn_lstm.py, agents.py, tuning.py, trial_code.py),
# entries in workflow_scripts/agents/jobs.py. docs/AGENTS.md.
#
# The segments are those of the split of `agents.window`. The study journal lies beside its result (.journal)
# and is not an output: Snakemake deletes the outputs of a failed job, and the journal must survive to resume.
AGENTS = CFG["agents"]
AGENT_KINDS = AGENTS["kinds"]
AGENT_SPLIT = f"results/splits/{{symbol}}/w{AGENTS['window']}.json"
# Only the cnn_lstm extractor may use a GPU (select_device: cuda, then mps, then cpu); the agents run on the CPU.
AGENT_GPU = {"gpu": 1} if AGENTS["cnn_lstm"]["device"] in ("auto", "cuda") else {}


wildcard_constraints:
    agent=alternation(AGENT_KINDS),


rule train_cnn_lstm:
    input:
        features="results/features/{symbol}.parquet",
        selected="results/selection/{symbol}/selected.json",
        bars="results/ingest/{symbol}.parquet",
        split=AGENT_SPLIT,
    output:
        model="results/agents/cnn_lstm/{symbol}/model.pt",
        embeddings="results/agents/cnn_lstm/{symbol}/embeddings.parquet",
        metadata="results/agents/cnn_lstm/{symbol}/metadata.json",
    log:
        "logs/agents/cnn_lstm/{symbol}.log",
    benchmark:
        "results/benchmarks/agents/cnn_lstm/{symbol}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        **AGENT_GPU,
        mem_mb=4000,
        runtime=runtime_min("train_cnn_lstm", 30),
    params:
        **job("agents.train_cnn_lstm", spec=agent_spec()),
    shell:
        JOB


rule tune_agent:
    input:
        embeddings="results/agents/cnn_lstm/{symbol}/embeddings.parquet",
        bars="results/ingest/{symbol}.parquet",
        split=AGENT_SPLIT,
        costs="results/costs/{symbol}.json",
    output:
        result="results/agents/study/{symbol}/{agent}.json",
        model="results/agents/study/{symbol}/{agent}.zip",
    log:
        "logs/agents/study/{symbol}/{agent}.log",
    benchmark:
        "results/benchmarks/agents/study/{symbol}/{agent}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("tune_agent", 120),
    params:
        **job("agents.tune_agent", spec=agent_spec(), grades=CFG["grades"]),
    shell:
        JOB


rule evaluate_agent:
    input:
        studies=expand("results/agents/study/{{symbol}}/{agent}.json", agent=AGENT_KINDS),
        models=expand("results/agents/study/{{symbol}}/{agent}.zip", agent=AGENT_KINDS),
        embeddings="results/agents/cnn_lstm/{symbol}/embeddings.parquet",
        bars="results/ingest/{symbol}.parquet",
        split=AGENT_SPLIT,
        costs="results/costs/{symbol}.json",
    output:
        result="results/agents/test/{symbol}.json",
    log:
        "logs/agents/test/{symbol}.log",
    benchmark:
        "results/benchmarks/agents/test/{symbol}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min("evaluate_agent", 15),
    params:
        **job("agents.evaluate_agent", spec=agent_spec(), grades=CFG["grades"], gates=CFG["gates"]),
    shell:
        JOB
