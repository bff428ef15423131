"""What a change to a finished run must replan: the change table of docs/ARCHITECTURE.md ("Reruns"), as data.

Each `Change` is one row: an edit (config overrides, a group choice, a coin added or removed, a module edited)
and the jobs it must plan, as a predicate over every job of the changed workflow (`snakemake -n --forceall`).
Planned = expected, job for job (rule and wildcards), is asserted by tests/reliability/test_change_plans.py on
the tiny run and printed by benchmarks/demo.py on the demo run.

Expected sets follow from what each rule reads (its inputs and its params' config slice), never from what a
run happened to plan: a row's `why` says which reads make each part necessary.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# Rules downstream of the registry: they read register_models' output (or the whole run).
AFTER_REGISTRY = {"register_models", "predict_batch", "paper_trade", "render_report"}
RUN_SUMMARIES = {"summarize_best_variants", "summarize_evaluation", "summarize_production"}
# Per-variant evaluation chain of a (symbol, window): what reads evaluate_stage1's output.
EVALUATION_CHAIN = {"evaluate_stage1", "report_best_variant", "plot_best_variant", "summarize_symbol"}
TRAINING_CHAIN = {"tune_stage2", "tune_stage3", "tune_stage4", "fit_production", "evaluate_production"}
# Every rule downstream of train_stage1 (stage 1 itself, its choices and everything they feed).
FROM_STAGE1 = (
    {"train_stage1", "pick_best_variant"} | EVALUATION_CHAIN | TRAINING_CHAIN | RUN_SUMMARIES | AFTER_REGISTRY
)
SELECTION = {"select_features", "aggregate_selection", "aggregate_selection_overall"}
# Rules whose code does not import workflow_scripts.features.
UPSTREAM_OF_FEATURES = {
    "write_resolved_config",
    "ingest_bars",
    "split_segments",
    "build_swing_targets",
    "snapshot_costs",
}


@dataclass(frozen=True)
class Job:
    rule: str
    symbol: str | None = None
    window: int | None = None
    side: str | None = None


_SYMBOL = re.compile(r"/([A-Z0-9]{2,}USDT)(?:[/._]|$)")
_WINDOW = re.compile(r"/w(\d+)(?:[/._]|$)")
_SIDE = re.compile(r"/(high|low)(?:[/._]|$)")


def job_of(rule: str, outputs: Iterable[str]) -> Job:
    """A job of a dry run's printout as (rule, symbol, window, side), read from its first output's path."""
    path = "/" + next(iter(outputs), "")
    sym, win, side = (rx.search(path) for rx in (_SYMBOL, _WINDOW, _SIDE))
    return Job(rule, sym and sym[1], win and int(win[1]), side and side[1])


Predicate = Callable[[Job], bool]


@dataclass(frozen=True)
class Change:
    name: str  # the row of the table
    why: str  # why exactly these jobs
    expected: Predicate
    overrides: tuple[str, ...] = ()  # Hydra dotted overrides on top of the run's
    groups: dict[str, str] = field(default_factory=dict)  # group choices on top of the run's
    symbols: tuple[str, ...] | None = None  # the changed universe (None: unchanged)
    edit: tuple[str, str] | None = None  # (module path, text appended to it)

    @property
    def reshapes(self) -> bool:
        """Whether the change adds or removes jobs (a coin or a window), so the changed workflow's job list
        must be listed again."""
        return self.symbols is not None or any(o.startswith("targets.windows=") for o in self.overrides)

    def expects(self, job: Job) -> bool:
        """The row's jobs; a config change also rewrites the run's resolved config (it records all of it)."""
        config_change = bool(self.overrides or self.groups or self.symbols)
        return self.expected(job) or (config_change and job.rule == "write_resolved_config")

    def config(self, base_overrides: Iterable[str], base_groups: dict[str, str]) -> list[str]:
        """Snakemake --config items of the changed run, on top of a run's own group choices and overrides."""
        overrides = [*base_overrides, *self.overrides]
        if self.symbols is not None:
            overrides.append(f"universe.symbols=[{','.join(self.symbols)}]")
        choices = {**base_groups, **self.groups}
        return [f"{k}={v}" for k, v in choices.items()] + [
            "overrides=[" + ",".join(f'"{o}"' for o in overrides) + "]"
        ]


def planned_and_expected(
    workdir, change: Change, plan: Callable[..., set[Job]], base_overrides, base_groups, every: set[Job]
) -> tuple[set[Job], set[Job]]:
    """Apply `change` to a finished run in `workdir` (config, or a module edit undone afterwards) and return
    the jobs `plan(config, *snakemake_args)` plans and the jobs the row expects; `every` is the unchanged
    workflow's job list (listed again when the change reshapes it)."""
    config = change.config(base_overrides, base_groups)
    edit = change.edit and (workdir / change.edit[0])
    original = edit and edit.read_text()
    if edit:
        edit.write_text(original + change.edit[1])
    try:
        planned = plan(config)
        every = plan(config, "--forceall") if change.reshapes else every
    finally:
        if edit:
            edit.write_text(original)
    return planned, {j for j in every if change.expects(j)}


def rules(*names: set[str] | str) -> Predicate:
    wanted = set().union(*({n} if isinstance(n, str) else n for n in names))
    return lambda j: j.rule in wanted


def of_symbol(symbol: str, names: set[str]) -> Predicate:
    return lambda j: j.rule in names and j.symbol == symbol


def any_of(*preds: Predicate) -> Predicate:
    return lambda j: any(p(j) for p in preds)


def changes(
    symbols: tuple[str, ...], windows: tuple[int, ...], new_symbol: str, new_window: int
) -> list[Change]:
    """The table for a finished run of `symbols` x `windows`; `new_symbol` (outside the cross-coin basket and
    the stage-2 representatives, raw data present) and `new_window` are the additions."""
    one = symbols[-1]
    per_symbol_cost_readers = {"snapshot_costs", "evaluate_production"} | EVALUATION_CHAIN
    return [
        Change(
            f"half spread of {one} only",
            "its cost snapshot -> its variant evaluations, their reports, plots and summary, its production "
            "evaluations (threshold, record, VIN); run summaries and the registry chain. No training, tuning"
            " or choice: costs never enter a fit, and the choice files hold validation facts only.",
            any_of(of_symbol(one, per_symbol_cost_readers), rules(RUN_SUMMARIES, AFTER_REGISTRY)),
            overrides=(f"costs.symbols.{one}.half_spread_bps=9.5",),
        ),
        Change(
            "gates=exploratory",
            "every evaluation reads the gate profile (verdicts, VINs, grades) -> every report, plot and "
            "summary and every production evaluation; no training, tuning or choice.",
            rules(EVALUATION_CHAIN, {"evaluate_production"}, RUN_SUMMARIES, AFTER_REGISTRY),
            groups={"gates": "exploratory"},
        ),
        Change(
            "evaluation threshold grid",
            "the threshold is chosen on validation from the grid by every evaluation: as gates.",
            rules(EVALUATION_CHAIN, {"evaluate_production"}, RUN_SUMMARIES, AFTER_REGISTRY),
            overrides=("evaluation.threshold_grid=[0.45,0.55,0.65]",),
        ),
        Change(
            "tuning budget of stage 4",
            "each stage's rule holds its own budget only: stage-4 studies, then the fits that read their "
            "parameters, and what reads the fits.",
            rules(
                {"tune_stage4", "fit_production", "evaluate_production", "summarize_production"},
                AFTER_REGISTRY,
            ),
            overrides=("tuning.budget.trials.stage4=2",),
        ),
        Change(
            "a stage-1 parameter",
            "every stage-1 model changes -> every choice may change -> everything from stage 1 on; selection"
            " and data untouched.",
            rules(FROM_STAGE1),
            overrides=("stage1.params.learning_rate=0.08",),
        ),
        Change(
            "a selection parameter",
            "every variant's selection -> each symbol's selected features -> everything trained on them.",
            rules(SELECTION, FROM_STAGE1),
            overrides=("selection.top_k=150",),
        ),
        Change(
            "a registry setting",
            "champion decisions only: register_models and what reads the registry.",
            rules(AFTER_REGISTRY),
            overrides=("registry.compare.alpha=0.1",),
        ),
        Change(
            f"one more window (w{new_window})",
            "the new window's chain (targets, split, selection, stage 1, evaluation, tuning, production) and"
            " each symbol's selection aggregate; every window of a symbol trains on the symbol's union of "
            "selected features (docs/SELECTION.md), which the new window may change, so stage 1 and "
            "everything after it rerun for every window. Ingest, features, screening and the other windows' "
            "targets, splits and selections do not (no window enters them).",
            any_of(
                lambda j: j.window == new_window,
                rules({"aggregate_selection", "aggregate_selection_overall"}, FROM_STAGE1),
            ),
            overrides=(f"targets.windows=[{','.join(str(w) for w in (*windows, new_window))}]",),
        ),
        Change(
            f"add a coin ({new_symbol}, outside the basket and the stage-2 representatives)",
            "the new coin's whole chain and the aggregates over coins (overall selection, run summaries, the"
            " registry chain); no job of another coin (its cross-coin features read only the basket).",
            any_of(
                lambda j: j.symbol == new_symbol,
                rules(
                    {"aggregate_selection_overall", "write_resolved_config"}, RUN_SUMMARIES, AFTER_REGISTRY
                ),
            ),
            symbols=(*symbols, new_symbol),
        ),
        Change(
            f"remove a coin ({new_symbol}, after a run with it)",
            "the aggregates over coins only (overall selection, run summaries, the registry chain): no other"
            " coin reads its files. (A basket coin cannot be removed while it is in the basket: a config "
            "error names it; removing a stage-2 representative retunes the windows it represented.)",
            rules({"aggregate_selection_overall", "write_resolved_config"}, RUN_SUMMARIES, AFTER_REGISTRY),
            symbols=symbols,
        ),
        Change(
            "an edit to a feature module (features/technical.py)",
            "the code digest of every rule that imports it changes: everything downstream of the feature "
            "tables (tests/reliability/test_code_reruns.py covers the other code edits).",
            lambda j: j.rule not in UPSTREAM_OF_FEATURES,
            edit=("workflow_scripts/features/technical.py", "\nEDITED = True\n"),
        ),
    ]
