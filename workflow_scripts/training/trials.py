"""True trial counts for the deflated Sharpe ratio (docs/LIFECYCLE.md): every configuration that competed
for a (symbol, side) champion slot.

The slot's candidates are: the trained stage-1 variants of that side in EVERY window (each window's best
variant goes on to tuning and production, and the windows' production models compete for the same slot), the
finished tuning trials of every window (stage 2 of the window, stages 3 and 4 of the (symbol, window, side)),
and the ensemble candidates of the slot (ensemble `kind: auto` tries average and stacker: 2; a fixed kind: 1;
ensembles disabled: 0). Every model of the slot, each window's production model and the ensemble alike, is
deflated with the same count. The variance of the trials' Sharpes is taken over the same candidates where a
Sharpe exists: the stage-1 variants of every window (tuning trials and ensemble candidates have none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workflow_scripts import artifacts

STAGES = ("stage2", "stage3", "stage4")


def ensemble_candidates(ensemble_cfg: Mapping | None) -> int:
    """How many ensembles compete for a slot under config group `ensemble`."""
    if not ensemble_cfg or not ensemble_cfg.get("enabled"):
        return 0
    return 2 if ensemble_cfg["kind"] == "auto" else 1


def slot_trials(
    choices: Mapping[int, dict], tuning: Mapping[int, Mapping[str, dict]], n_ensembles: int = 0
) -> dict:
    """{"n_trials", "by_source": {stage1_variants, stage2, stage3, stage4, ensembles}, "by_window": {w:
    {...}}, "trial_sharpes": [...]} of one slot. `choices`: {window: best_variant document of the (symbol,
    window, side)}; `tuning`: {window: {stage: tuning result}} (a missing stage counts 0)."""
    if set(choices) != set(tuning):
        raise ValueError(f"choices for windows {sorted(choices)} but tuning for {sorted(tuning)}")
    slots = {(c["symbol"], c["side"]) for c in choices.values()}
    if len(slots) != 1:
        raise ValueError(f"choices of more than one (symbol, side): {sorted(slots)}")
    by_window, sharpes = {}, []
    for w in sorted(choices):
        trained = [v for v in choices[w]["variants_ranked"] if v.get("status") == "trained"]
        counts = {"stage1_variants": len(trained)}
        counts |= {s: int(tuning[w][s]["finished_trials"]) if s in tuning[w] else 0 for s in STAGES}
        by_window[int(w)] = counts
        sharpes += [v["sharpe_per_trade"] for v in trained if v.get("sharpe_per_trade") is not None]
    by_source = {k: sum(c[k] for c in by_window.values()) for k in ("stage1_variants", *STAGES)}
    by_source["ensembles"] = int(n_ensembles)
    symbol, side = slots.pop()
    return {
        "slot": f"{symbol}/{side}",
        "n_trials": int(sum(by_source.values())),
        "by_source": by_source,
        "by_window": by_window,
        "trial_sharpes": sharpes,
    }


def read_slot_trials(
    choices: Mapping[int, str], tuning: Mapping[str, Mapping[int, str]], n_ensembles: int
) -> dict:
    """slot_trials from files: {window: best_variant path}, {stage: {window: tuning result path}};
    `n_ensembles` = ensemble_candidates(config group ensemble), the one ensemble setting the count reads."""
    docs = {w: artifacts.read_json(p) for w, p in choices.items()}
    results = {w: {s: artifacts.read_json(paths[w]) for s, paths in tuning.items()} for w in choices}
    return slot_trials(docs, results, n_ensembles)


def slot_of_folders(metrics: Sequence[Mapping]) -> int:
    """The slot count an ensemble is deflated with: its members' (all equal when they come from slot_trials;
    the largest otherwise)."""
    return max([int((m.get("dsr_trials") or {}).get("n_trials", 1)) for m in metrics] or [1])
