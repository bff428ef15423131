# swingflow: raw bars -> features -> swing targets -> screening and selection -> stage-1 variants ->
# cost-aware evaluation -> best variant per (symbol, window, side).
# The stages, in order; each rules/<stage>.smk says which workflow_scripts module does the work.
from snakemake.utils import min_version

min_version("9.0")


include: "rules/common.smk"
include: "rules/config.smk"
include: "rules/data.smk"
include: "rules/features.smk"
include: "rules/targets.smk"
include: "rules/selection.smk"
include: "rules/training.smk"
include: "rules/evaluation.smk"
include: "rules/agents.smk"
include: "rules/registry.smk"
include: "rules/lifecycle.smk"
include: "rules/report.smk"


# Notifications (Telegram, JSON webhook; channels per env, secrets only from the environment):
# never fail a run.
from workflow_scripts.ops import collector, notify
from workflow_scripts.ops.scheduler_timers import cancel_rescheduling_timers


# The DAG is built: the garbage collector, paused for the plan (rules/common.smk), runs again for the jobs.
onstart:
    collector.resume_after_the_plan()
    check_provenance()
    notify.on_start(log, CFG["env"]["notifications"], notify.run_context(CFG))


# The run is over: its rescheduling timers need not fire (profiles/local's long rate-limiter span would keep the
# process up to a minute otherwise; workflow_scripts/ops/scheduler_timers.py).
onsuccess:
    cancel_rescheduling_timers()
    notify.on_success(log, CFG["env"]["notifications"], notify.run_context(CFG))


onerror:
    cancel_rescheduling_timers()
    notify.on_error(log, CFG["env"]["notifications"], notify.run_context(CFG))


rule all:
    default_target: True
    input:
        all_outputs(),
