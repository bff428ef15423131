# The only clever file: config composition and validation, the lists every rule expands over, wildcard
# constraints and input functions. Rules stay declarative.
import importlib.util
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)  # the workflow runs from a checkout even before `pip install -e .`

from workflow_scripts.config import schema as swcfg
from workflow_scripts.data.ingest import BarsError, find_raw_file
from workflow_scripts.data.splits import required_bars
from workflow_scripts.data.universe import count_bars, trainable_pairs
from workflow_scripts.models.kinds import KINDS
from workflow_scripts.targets.grammar import horizon_bars, target_grid
from workflow_scripts.training.trials import ensemble_candidates
from workflow_scripts.ops import collector, provenance, stale_lock
from workflow_scripts.ops.code_digest import rule_code_digest
from workflow_scripts.ops.signatures import presigned, store_resource_signature

CFG = swcfg.compose(swcfg.overrides_from_snakemake(config))
# What the plan costs per job, cut where Snakemake spends it (docs/SCALE.md, "The 400-coin plan"): the cyclic
# garbage collector rescanning the plan's objects (~18 %; resumed by onstart) and the signature of
# Resource.evaluate looked up for every resource of every job (~7 %).
collector.pause_for_the_plan()
store_resource_signature()
WINDOWS = CFG["targets"]["windows"]


def plan_universe():
    """The coins and windows this run trains: a coin with too few bars in the span for ingest, or for a
    window's three segments, is left out of the plan with its reason (workflow_scripts/data/universe.py),
    written to results/config/universe.json and the evaluation summary."""
    data, split = CFG["env"]["data"], CFG["split"]
    raw = {}
    for s in CFG["universe"]["symbols"]:
        try:
            raw[s] = find_raw_file(data["raw_dir"], s)
        except BarsError:
            raw[s] = None  # its ingest job names the folder and the names it looked for
    need = {
        w: required_bars(
            horizon_bars(w, CFG["targets"]),
            split["train_frac"],
            split["validation_frac"],
            split["embargo_bars"],
        )
        for w in WINDOWS
    }
    span = f"[{data['start'] or 'first bar'}, {data['end'] or 'last bar'})"
    return trainable_pairs(
        count_bars(raw, data["start"], data["end"], cache=Path(".snakemake/swingflow/bar_counts.json")),
        WINDOWS,
        need,
        CFG["ingest"]["min_bars"],
        span,
    )


UNIVERSE = plan_universe()
SYMBOLS = UNIVERSE.symbols  # the universe's coins with at least one trainable window
WINDOWS_OF = UNIVERSE.windows  # symbol -> its trainable windows
SKIPPED = UNIVERSE.skipped  # [{symbol, window (None: the coin), bars, reason}]
TRAINED_WINDOWS = [w for w in WINDOWS if any(w in ws for ws in WINDOWS_OF.values())]
if SKIPPED and workflow.is_main_process:
    for s in SKIPPED:
        what = s["symbol"] if s["window"] is None else f"{s['symbol']} window {s['window']}"
        print(f"swingflow: skipping {what}: {s['reason']}", file=sys.stderr)
if not SYMBOLS:
    reasons = "; ".join(f"{s['symbol']}: {s['reason']}" for s in SKIPPED)
    raise swcfg.ConfigError(
        f"universe '{CFG['universe']['name']}': no coin has enough bars in the span for any window; {reasons}"
    )
GRID = target_grid(CFG["targets"])
TARGETS = [g["id"] for g in GRID]
SIDES = sorted({g["side"] for g in GRID})
THREADS = CFG["env"]["compute"]["threads_per_job"]

# A run that executes jobs (not -n, not --lint, not a job's own subprocess). Such a run clears a lock left by a
# killed Snakemake (dead owner; a live one stays, docs/RELIABILITY.md) here, because Snakemake takes its lock
# right after parsing, before any hook; the provenance check waits for onstart (Snakefile).
EXECUTES_JOBS = workflow.is_main_process and not workflow.output_settings.dryrun and workflow.check_envvars
if EXECUTES_JOBS:
    for line in stale_lock.claim(".snakemake"):
        print(line, file=sys.stderr)

# env.tracking=mlflow needs the optional mlflow package: say so before planning, not in a failed job.
if CFG["env"]["tracking"] == "mlflow" and importlib.util.find_spec("mlflow") is None:
    raise swcfg.ConfigError(
        f"env.tracking: 'mlflow' (env={CFG['env']['name']}) needs the mlflow package, which is not installed; "
        "install it with: pip install -e '.[tracking]' (or choose an env with tracking: none)"
    )


def check_provenance():
    """Production starts only from a commit that can rebuild it (docs/OPERATIONS.md, "Environments"): called
    by onstart, so only a run that executes jobs checks, before its first job."""
    if CFG["env"]["require_provenance"]:
        raw = [find_raw_file(CFG["env"]["data"]["raw_dir"], s) for s in SYMBOLS]
        provenance.require_reproducible(workflow.basedir, raw)


def alternation(values):
    """A regex matching exactly these values, factored by common prefix (a trie: `S00(?:01|02)USDT`). Python's
    re tries a flat `A|B|C` branch by branch, so with 400 symbols every path match cost ~8 us and the plan of
    400 coins spent ~15 % of its time here; the trie costs the length of the value (docs/SCALE.md)."""
    trie = {}
    for v in sorted({str(v) for v in values}):
        node = trie
        for ch in v:
            node = node.setdefault(ch, {})
        node[""] = {}  # a value ends here

    def regex(node):
        branches = [re.escape(ch) + regex(child) for ch, child in node.items() if ch]
        branches += [""] if "" in node else []
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return regex(trie)


wildcard_constraints:
    symbol=alternation(CFG["universe"]["symbols"]),  # a coin planned out can still be asked for by path
    window=alternation(WINDOWS),
    target=alternation(TARGETS),
    side=alternation(SIDES),


def runtime_min(rule_name, minutes):
    """Runtime in minutes for one attempt of a rule: env.compute.runtime_minutes[rule] or the rule's default,
    times the attempt, so a job stopped for running too long is retried with more time (profiles: retries: 2).
    Slurm enforces it (sbatch -t); locally each command runs behind workflow_scripts.ops.timeout_guard."""
    base = CFG["env"]["compute"]["runtime_minutes"].get(rule_name, minutes)
    return presigned(lambda wildcards, attempt: base * attempt)


def as_json(obj):
    """Params travel as canonical JSON: a changed value changes the string, and Snakemake reruns the rule."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


# ---- the one shell line of every rule ------------------------------------------------------------------------
# Each rule runs one stage function through workflow_scripts/job.py, behind the runtime guard, into its log;
#   params: **job("<stage>.<function>", spec=...)  calls  workflow_scripts/<stage>/jobs.py <function>(job)
# and the function is named like the rule. `job` is the manifest, i.e. the named inputs, outputs, params,
# threads and wildcards, so a path is named once (in the Snakefile). Snakemake does not record a param function
# that reads input/output, so the params also carry `config_slice`, the same params as JSON from the wildcards
# alone; that is what Snakemake records and compares, and a changed slice reruns the job (trigger `params`).
# `code` is the digest of the code the job runs (workflow_scripts/ops/code_digest.py): an edit to it reruns the
# job the same way.
JOB = (
    "python -m workflow_scripts.ops.timeout_guard {resources.runtime} -- "
    "python -m workflow_scripts.job {params.job:q} > {log} 2>&1"
)


def job(entry, **params):
    """The params of a rule: its manifest (`entry` = "<stage>.<function>") and its recorded config slice.
    A callable param is called with the wildcards (a per-job slice). The JSON of the other params is written
    once per rule, not per job (a plan of 400 coins builds ~49,000 manifests and slices: docs/SCALE.md); the
    text is as_json's of the whole manifest all the same (sorted keys, tests/ops/test_scale.py)."""
    fixed = {k: as_json(v) for k, v in params.items() if not callable(v)}
    per_job = {k: v for k, v in params.items() if callable(v)}
    fixed_json = json_object(fixed)
    last = {}  # the slice of the job whose params Snakemake is expanding: its manifest, then its slice

    def config_slice(wildcards):
        if not per_job:
            return fixed_json
        key = tuple(wildcards.items())
        if key not in last:
            last.clear()
            last[key] = json_object(fixed | {k: as_json(v(wildcards)) for k, v in per_job.items()})
        return last[key]

    head = f'{{"entry":{json.dumps(entry)},"input":'

    def manifest(wildcards, input, output, threads):
        # the keys of as_json's object in sorted order: entry, input, output, params, threads, wildcards
        return "".join(
            (
                head,
                as_json(dict(input.items())),
                ',"output":',
                as_json(dict(output.items())),
                ',"params":',
                config_slice(wildcards),
                ',"threads":',
                json.dumps(threads),
                ',"wildcards":',
                as_json(dict(wildcards.items())),
                "}",
            )
        )

    return {
        "job": presigned(manifest),
        "config_slice": presigned(lambda wildcards: config_slice(wildcards)),
        "code": rule_code_digest(entry),
    }


def json_object(fragments):
    """as_json of an object whose values are JSON text already ({key: as_json(value)})."""
    return "{%s}" % ",".join(f"{json.dumps(k)}:{fragments[k]}" for k in sorted(fragments))


def group_spec(group):
    """A config group without its `name` label: the keys a stage module reads."""
    return {k: v for k, v in CFG[group].items() if k != "name"}


def targets_of_side(side):
    return [g["id"] for g in GRID if g["side"] == side]


# The variants of each side, for the jobs that pick and report both sides of a (symbol, window).
TARGETS_OF_SIDE = {side: targets_of_side(side) for side in SIDES}


# ---- config slices (what each rule reads, nothing more) -----------------------------------------------------
def tuning_spec(stage):
    """What one tuning stage reads: the tuning group with only its own stage's budget and early stopping, the
    representative rule for stage 2 only (its coins are the rule's `symbols`), CV folds for stages 3-4 only
    (stage 2 scores on the validation segment), the focus radius for stage 4 only."""
    t = group_spec("tuning")
    drop = {"representative_symbols", "budget", "early_stopping_rounds"}
    drop |= {"cv", "focus_radius"} if stage == "stage2" else {"representative_rule"}
    drop |= {"focus_radius"} if stage == "stage3" else set()
    return {k: v for k, v in t.items() if k not in drop} | {
        "budget": {"trials": {stage: t["budget"]["trials"][stage]}, "minutes": t["budget"]["minutes"]},
        "early_stopping_rounds": {stage: t["early_stopping_rounds"][stage]},
    }


def targets_spec():
    """The targets group as one window's jobs read it: the grid and the horizon rule, not the list of windows,
    so adding a window does not rerun the other windows' jobs."""
    return {k: v for k, v in CFG["targets"].items() if k not in ("name", "windows")}


def agent_spec(*stages):
    """What the agent entries read (rules/agents.smk): the agents group without its switches and without
    the settings of the stages (ensemble, hybrid, archive_top_percent) a rule does not run unless named."""
    skip = {"name", "enabled", "kinds", "window", "ensemble", "hybrid", "archive_top_percent"} - set(stages)
    return {k: v for k, v in CFG["agents"].items() if k not in skip}


def ingest_spec():
    """What ingest reads: the span, its own minimum bar count and quality checks (config/ingest); nothing from
    the target windows, so a new window does not rerun ingest (a coin too short for a window fails its
    split)."""
    data = CFG["env"]["data"]
    return {"start": data["start"], "end": data["end"], **group_spec("ingest")}


def split_spec(wildcards):
    s = CFG["split"]
    return {
        "horizon": horizon_bars(int(wildcards.window), CFG["targets"]),
        "train_frac": s["train_frac"],
        "validation_frac": s["validation_frac"],
        "embargo_bars": s["embargo_bars"],
    }


def symbol_cost_table(wildcards):
    """Only this symbol's cost entry (and the default): editing another symbol's costs leaves it alone."""
    costs = CFG["costs"]
    entry = costs["symbols"].get(wildcards.symbol)
    table = {"source": costs["source"], "default": costs["default"]}
    if entry is not None:
        table["symbols"] = {wildcards.symbol: entry}
    return table


def registry_dir():
    """env.storage.registry_dir: the registry folder outside results/ (relative paths: from the workflow root)."""
    return CFG["env"]["storage"]["registry_dir"]


def evaluation_spec():
    return {
        "targets": targets_spec(),
        "evaluation": CFG["evaluation"],
        "gates": CFG["gates"],
        "grades": CFG["grades"],
        "stage1_params": CFG["stage1"]["params"],
    }


def ensemble_spec():
    """What fit_ensemble reads: the ensemble group and, for evaluation, targets, trading rule, gates and grades."""
    return {k: CFG[k] for k in ("ensemble", "evaluation", "gates", "grades")} | {"targets": targets_spec()}


def production_spec(wildcards):
    """What evaluate_production reads: the head, evaluation (targets, trading rule, gates, grades), what
    features.json records for live predictions (feature spec; `universe`: the coins the symbol's features read,
    itself and its cross-coin reference coins, so adding a coin outside the basket changes no other coin's
    folder) and the encoder group (its prefix)."""
    return {
        "model": CFG["model"],
        "targets": targets_spec(),
        "evaluation": CFG["evaluation"],
        "gates": CFG["gates"],
        "grades": CFG["grades"],
        "features": CFG["features"],
        "universe": sorted({wildcards.symbol, *other_base_features(wildcards)}),
        "encoder": CFG["encoder"],
    }


# ---- input functions ----------------------------------------------------------------------------------------
# The shared encoder file tuning and production read ([] when encoder=none).
ENCODER_FILES = [] if CFG["encoder"]["kind"] == "none" else [f"results/encoder/{CFG['encoder']['kind']}.json"]
# The ensemble folders register_models registers beside the single models ([] unless ensemble.enabled).
ENSEMBLE_FOLDERS = (
    expand("results/ensemble/{symbol}/{side}", symbol=SYMBOLS, side=SIDES)
    if CFG["ensemble"]["enabled"]
    else []
)


def per_side(pattern):
    """`pattern` once per side, its other wildcards kept: the inputs and outputs of a job that does both sides
    of a (symbol, window) (workflow_scripts/job.py `each_side` gives each side its own paths back)."""
    return expand(pattern, side=SIDES, allow_missing=True)


def combination_inputs(previous):
    """The files of the best combinations of a (symbol, window), one per side, and the result of the stage
    before them (`previous`: a path, or per_side paths)."""
    return {
        "choice": per_side("results/best_variant/{symbol}/w{window}/{side}.json"),
        "previous": previous,
        "features": "results/features/{symbol}.parquet",
        "selected": "results/selection/{symbol}/selected.json",
        "targets": "results/targets/{symbol}/w{window}.parquet",
        "split": "results/splits/{symbol}/w{window}.json",
        "encoder": ENCODER_FILES,
    }


def pairs(pattern, **wildcards):
    """`pattern` expanded over the trainable (symbol, window) pairs (and any other wildcards given), in the
    order expand(symbol=SYMBOLS, window=WINDOWS, ...) would give when nothing is skipped."""
    return [p for s in SYMBOLS for p in expand(pattern, symbol=s, window=WINDOWS_OF[s], **wildcards)]


def symbol_windows(pattern, **more):
    """An input function: `pattern` with `{w}` over the job's symbol's trainable windows (and any other
    wildcards given, expanded), the job's own wildcards filled in."""

    patterns = expand(pattern, **more, allow_missing=True) if more else [pattern]

    def inputs(wildcards):
        values = dict(wildcards.items())
        return [p.format(w=w, **values) for w in WINDOWS_OF[wildcards.symbol] for p in patterns]

    return presigned(inputs)


def windows_of_symbol(wildcards):
    return WINDOWS_OF[wildcards.symbol]


# Stage 2's representative of a window is chosen among the stage-1 choices of the configured representative
# coins that train the window (config/tuning), else of every coin that does.


def stage2_symbols(window):
    has = [s for s in SYMBOLS if int(window) in WINDOWS_OF[s]]
    return [s for s in CFG["tuning"]["representative_symbols"] if s in has] or has


def stage2_inputs(pattern, **more):
    """An input function: `pattern` over the window's stage-2 coins."""
    return presigned(
        lambda wildcards: expand(
            pattern, symbol=stage2_symbols(wildcards.window), window=wildcards.window, **more
        )
    )


def raw_bars(wildcards):
    return str(find_raw_file(CFG["env"]["data"]["raw_dir"], wildcards.symbol))


def other_base_features(wildcards):
    """The base tables a coin's cross-coin table reads (workflow_scripts/features/cross_coin.py): the basket
    without the coin (features.cross_coin.mode basket; a coin outside the basket is read by no other coin), or
    every other coin (all_pairs). A basket coin outside the universe is a config error naming it."""
    from workflow_scripts.features import reference_coins

    try:
        coins = reference_coins(wildcards.symbol, SYMBOLS, CFG["features"]["cross_coin"])
    except ValueError as exc:
        raise swcfg.ConfigError(str(exc)) from None
    return {s: f"results/features/base/{s}.parquet" for s in coins}


def features_bars(wildcards):
    """The ingested bars a coin's live features read: its own first, then its cross-coin basket's (rule
    paper_trade; with the default basket two or three files, not the universe's)."""
    others = sorted(set(other_base_features(wildcards)) - {wildcards.symbol})
    return [f"results/ingest/{s}.parquet" for s in [wildcards.symbol, *others]]


def all_outputs():
    return [
        "results/config/resolved.yaml",
        expand("results/ingest/{symbol}.quality.json", symbol=SYMBOLS),
        expand("results/best_variant/{symbol}/summary.md", symbol=SYMBOLS),
        "results/best_variant/summary.md",
        "results/evaluation/summary.md",
        "results/selection/overall.json",
        "results/production/summary.md",
        "results/registry/run_status.json",
        expand("results/predictions/{symbol}.parquet", symbol=SYMBOLS),
        expand("results/lifecycle/paper/{symbol}.json", symbol=SYMBOLS),  # rules/lifecycle.smk
        "results/report/evaluation.html",  # rules/report.smk: the sections of `snakemake --report`
        # rules/tracking.smk: production models -> MLflow, only when env.tracking is mlflow
        ["results/tracking/mlflow_runs.json"] if CFG["env"]["tracking"] == "mlflow" else [],
        # rules/agents.smk: the RL line, only with agents=ppo (or another agents option)
        expand(AGENT_OUTPUTS, symbol=SYMBOLS) if CFG["agents"]["enabled"] else [],
    ]
