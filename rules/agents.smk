# The hierarchical RL line (issue 17, seeds 003/004; off by default, `--config agents=ppo` switches it on):
# stage 1 a CNN-LSTM feature extractor per symbol; stage 2 Optuna studies of stable-baselines3 agents per
# (symbol, agent kind) on a costed trading environment, scored on validation only, the chosen policy exported
# to TorchScript beside its SB3 zip; stage 3 a hybrid agent that also observes the evaluated production models'
# class probabilities; stage 4 an ensemble of the top agent trials chosen on validation. Each of the symbol's
# chosen agent, ensemble and hybrid is evaluated once on the test segment. Code: workflow_scripts/agents/
# (environment.py, cnn_lstm.py, agents.py, tuning.py, trial_code.py, export.py, ensemble.py, hybrid.py),
# entries in workflow_scripts/agents/jobs.py. docs/AGENTS.md.
#
# The segments are those of the split of `agents.window`. A study journal lies beside its result (.journal)
# and is not an output: Snakemake deletes the outputs of a failed job, and the journal must survive to resume.
AGENTS = CFG["agents"]
AGENT_KINDS = AGENTS["kinds"]
AGENT_SPLIT = f"results/splits/{{symbol}}/w{AGENTS['window']}.json"
# Only the cnn_lstm extractor may use a GPU (select_device: cuda, then mps, then cpu); the agents run on the CPU.
AGENT_GPU = {"gpu": 1} if AGENTS["cnn_lstm"]["device"] in ("auto", "cuda") else {}


AGENT_STUDIES = expand("results/agents/study/{{symbol}}/{agent}.json", agent=AGENT_KINDS)
AGENT_MODELS = expand("results/agents/study/{{symbol}}/{agent}.zip", agent=AGENT_KINDS)
# What rule all asks for (rules/common.smk all_outputs), per symbol: each test evaluation of the line.
AGENT_OUTPUTS = [
    "results/agents/test/{symbol}.json",
    *(["results/agents/test/ensemble/{symbol}.json"] if AGENTS["ensemble"]["enabled"] else []),
    *(["results/agents/test/hybrid/{symbol}.json"] if AGENTS["hybrid"]["enabled"] else []),
    "results/agents/models/{symbol}",
    "results/registry/agents/{symbol}.json",  # rules/registry.smk register_agent_models
]


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
        policy="results/agents/study/{symbol}/{agent}.pt",
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
        studies=AGENT_STUDIES,
        models=AGENT_MODELS,
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


# Stage 4: the top agent trials of the symbol combined, chosen on validation (ensemble.py); the folder holds
# agent_ensemble.json and the members' TorchScript policies.
rule fit_agent_ensemble:
    input:
        studies=AGENT_STUDIES,
        models=AGENT_MODELS,
        embeddings="results/agents/cnn_lstm/{symbol}/embeddings.parquet",
        bars="results/ingest/{symbol}.parquet",
        split=AGENT_SPLIT,
        costs="results/costs/{symbol}.json",
    output:
        folder=directory("results/agents/ensemble/{symbol}"),
    log:
        "logs/agents/ensemble/{symbol}.log",
    benchmark:
        "results/benchmarks/agents/ensemble/{symbol}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("fit_agent_ensemble", 60),
    params:
        **job("agents.fit_agent_ensemble", spec=agent_spec("ensemble"), grades=CFG["grades"]),
    shell:
        JOB


rule evaluate_agent_ensemble:
    input:
        ensemble="results/agents/ensemble/{symbol}",
        studies=AGENT_STUDIES,
        embeddings="results/agents/cnn_lstm/{symbol}/embeddings.parquet",
        bars="results/ingest/{symbol}.parquet",
        split=AGENT_SPLIT,
        costs="results/costs/{symbol}.json",
    output:
        result="results/agents/test/ensemble/{symbol}.json",
    log:
        "logs/agents/test/ensemble/{symbol}.log",
    benchmark:
        "results/benchmarks/agents/test/ensemble/{symbol}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min("evaluate_agent_ensemble", 15),
    params:
        **job("agents.evaluate_agent_ensemble", spec=agent_spec(), grades=CFG["grades"], gates=CFG["gates"]),
    shell:
        JOB


# Stage 3: the hybrid (hybrid.py) reads the EVALUATED (train-only) production models of `agents.window`, both
# sides; they are inputs, so a changed production folder reruns it (its metadata records their sha256).
rule tune_hybrid:
    input:
        production=expand(
            "results/production/{{symbol}}/w{window}/{side}", window=AGENTS["window"], side=SIDES
        ),
        features="results/features/{symbol}.parquet",
        embeddings="results/agents/cnn_lstm/{symbol}/embeddings.parquet",
        bars="results/ingest/{symbol}.parquet",
        split=AGENT_SPLIT,
        costs="results/costs/{symbol}.json",
    output:
        result="results/agents/hybrid/{symbol}/study.json",
        model="results/agents/hybrid/{symbol}/policy.zip",
        policy="results/agents/hybrid/{symbol}/policy.pt",
        probabilities="results/agents/hybrid/{symbol}/probabilities.parquet",
    log:
        "logs/agents/hybrid/{symbol}.log",
    benchmark:
        "results/benchmarks/agents/hybrid/{symbol}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("tune_hybrid", 120),
    params:
        **job("agents.tune_hybrid", spec=agent_spec("hybrid"), grades=CFG["grades"]),
    shell:
        JOB


rule evaluate_hybrid:
    input:
        study="results/agents/hybrid/{symbol}/study.json",
        model="results/agents/hybrid/{symbol}/policy.zip",
        probabilities="results/agents/hybrid/{symbol}/probabilities.parquet",
        studies=AGENT_STUDIES,
        embeddings="results/agents/cnn_lstm/{symbol}/embeddings.parquet",
        bars="results/ingest/{symbol}.parquet",
        split=AGENT_SPLIT,
        costs="results/costs/{symbol}.json",
    output:
        result="results/agents/test/hybrid/{symbol}.json",
    log:
        "logs/agents/test/hybrid/{symbol}.log",
    benchmark:
        "results/benchmarks/agents/test/hybrid/{symbol}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=runtime_min("evaluate_hybrid", 15),
    params:
        **job("agents.evaluate_hybrid", spec=agent_spec(), grades=CFG["grades"], gates=CFG["gates"]),
    shell:
        JOB


# The symbol's RL models as registry model folders (agents/package.py; models/kinds.py cnn_lstm, ppo/sac/td3,
# hybrid_*, agent_ensemble) + trials.json: what `swingflow archive --agent-models` archives. The chosen agent,
# the ensemble and the hybrid get their validation evidence (agents/replay.py, judged with the run's gate):
# what the champion rules of the symbol's "both" slot read.
rule package_agent_models:
    input:
        cnn_model="results/agents/cnn_lstm/{symbol}/model.pt",
        cnn_metadata="results/agents/cnn_lstm/{symbol}/metadata.json",
        studies=AGENT_STUDIES,
        models=AGENT_MODELS,
        policies=expand("results/agents/study/{{symbol}}/{agent}.pt", agent=AGENT_KINDS),
        test="results/agents/test/{symbol}.json",
        ensemble=["results/agents/ensemble/{symbol}"] if AGENTS["ensemble"]["enabled"] else [],
        ensemble_test=(
            ["results/agents/test/ensemble/{symbol}.json"] if AGENTS["ensemble"]["enabled"] else []
        ),
        hybrid_study=["results/agents/hybrid/{symbol}/study.json"] if AGENTS["hybrid"]["enabled"] else [],
        hybrid_policy=["results/agents/hybrid/{symbol}/policy.pt"] if AGENTS["hybrid"]["enabled"] else [],
        hybrid_probabilities=(
            ["results/agents/hybrid/{symbol}/probabilities.parquet"] if AGENTS["hybrid"]["enabled"] else []
        ),
        hybrid_test=["results/agents/test/hybrid/{symbol}.json"] if AGENTS["hybrid"]["enabled"] else [],
        embeddings="results/agents/cnn_lstm/{symbol}/embeddings.parquet",
        bars="results/ingest/{symbol}.parquet",
        split=AGENT_SPLIT,
        costs="results/costs/{symbol}.json",
    output:
        folder=directory("results/agents/models/{symbol}"),
    log:
        "logs/agents/models/{symbol}.log",
    benchmark:
        "results/benchmarks/agents/models/{symbol}.tsv"
    conda:
        "../envs/swingflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=runtime_min("package_agent_models", 60),
    params:
        **job(
            "agents.package_agent_models",
            spec=agent_spec("archive_top_percent"),
            grades=CFG["grades"],
            gates=CFG["gates"],
            window=AGENTS["window"],
        ),
    shell:
        JOB
