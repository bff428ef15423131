"""Entries of rules/lifecycle.smk: paper_trade."""

from pathlib import Path

from workflow_scripts import artifacts
from workflow_scripts.lifecycle import paper
from workflow_scripts.ops import notify
from workflow_scripts.registry import paper_trading


def paper_trade(job) -> None:
    """Extend the paper ledgers of the symbol's deployed slots (in the registry, outside results/) with the
    run's bars, then apply the champion rules to the ledgers (paper_trading.judge: a challenger better on the
    common paper bars replaces its champion, a deployed champion below the paper floor is demoted) and notify
    the changes; the declared output is this run's view: one claimed-vs-paper row per slot and the changes."""
    symbol, p = job.wildcards.symbol, job.params
    bars_dir = Path(job.input.bars[0]).parent  # results/ingest: every symbol the slots' features may join
    rows = paper_trading.paper_trade(p.registry, bars_dir, p.ledger, symbols=[symbol], skip_missing=True)
    slots = [
        r if "skipped" in r else paper.claimed_vs_paper(r) | {"appended_bars": r["appended"]["bars"]}
        for r in rows
    ]
    changes = paper_trading.judge(p.registry, p.spec, p.ledger, symbols=[symbol])
    if changes:
        print(notify.deliver(*paper_trading.judgement_message(changes), p.notifications))
    artifacts.write_json(
        job.output.summary, {"symbol": symbol, "ledger": str(p.ledger), "slots": slots, "changes": changes}
    )
    for r in slots:
        print(
            f"slot {r['slot']} {r['vin']}: " + (r["skipped"] if "skipped" in r else f"{r['paper_bars']} bars")
        )
    for c in changes:
        print(f"{c['symbol']}/{c['side']} {c['event']} {c['vin']}: {c['evidence'].get('why')}")
    if not slots:
        print(f"{symbol}: no deployed slot")
