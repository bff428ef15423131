"""Python's cyclic garbage collector, paused while Snakemake plans.

A plan allocates millions of objects that all live until it ends: the jobs, their file lists, params and
resources (a 400-coin plan: 32,000 jobs, 1.3 GB). Every 700 allocations the collector runs, and its
generation-2 passes rescan the whole growing heap again and again. That was ~18 % of the 400-coin dry run
(docs/SCALE.md, "The 400-coin plan"), and it frees nothing: the plan's peak RSS is the same with the collector
paused (1,321 MB against 1,319 MB).

- `pause_for_the_plan()`: rules/common.smk calls it when the workflow is parsed, before Snakemake builds the
  DAG.
- `resume_after_the_plan()`: the Snakefile's `onstart` calls it. Only a run that executes jobs calls
  `onstart`, once the DAG is built. It moves the plan's objects into the permanent generation
  (`gc.freeze`), so later passes do not scan them, and enables the collector for the scheduling that follows.
- A dry run, `--lint`, or a cluster job's own Snakemake (`--no-hooks`: one job, then exit) ends with the
  collector still paused. So does a whole run started with `--no-hooks`: its objects are then freed by
  reference counting alone, and cycles stay until it ends.
"""

from __future__ import annotations

import gc


def pause_for_the_plan() -> None:
    gc.disable()


def resume_after_the_plan() -> None:
    gc.freeze()
    gc.enable()
