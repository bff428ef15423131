"""The `swingflow` command: the registry, champions, archive/cleanup/deploy, predictions, paper trading, dashboard, VIN decoding.

    swingflow [--registry DIR] [--json] COMMAND ...

`--registry` defaults to $SWINGFLOW_REGISTRY or registry/local-dev. Tables are printed with rich; `--json`
prints plain JSON for scripts. Errors print one line on stderr and exit 1 (bad usage exits 2), never a
traceback. docs/REGISTRY.md has examples.
"""  # noqa: E501 (the first line is the --help description: build_parser)

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from workflow_scripts.agents import trial_archive, trial_code
from workflow_scripts.config.schema import config_group
from workflow_scripts.evaluation.vin import VinError, decode_vin
from workflow_scripts.lifecycle import paper
from workflow_scripts.ops import notify
from workflow_scripts.registry import dashboard, runs
from workflow_scripts.registry import paper_trading as pt
from workflow_scripts.registry import predictions as pr
from workflow_scripts.registry import store as reg

DEFAULT_REGISTRY = "registry/local-dev"


def _console() -> Console:
    # A pipe or a test gets a wide console: VINs must not wrap in the middle.
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 220, soft_wrap=False)


def _table(rows: Sequence[dict], columns: Sequence[str]) -> Table:
    t = Table()
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[_fmt(r.get(c)) for c in columns])
    return t


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.4f}"
    return str(x)


def _emit(args, data: Any, title: str = "", columns: Sequence[str] | None = None) -> None:
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        return
    con = _console()
    if title:  # above the table, not inside: a narrow table must not wrap it
        con.print(f"[bold]{title}[/]", highlight=False)
    if columns is not None:
        con.print(_table(data, columns))
    elif isinstance(data, dict):
        con.print(
            _table(
                [
                    {"key": k, "value": json.dumps(v, default=str) if isinstance(v, (dict, list)) else v}
                    for k, v in data.items()
                ],
                ["key", "value"],
            )
        )
    else:
        con.print(data)


def _read_frame(path: str):
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if p.suffix == ".parquet":
        return pd.read_parquet(p)
    if p.suffix == ".feather":
        return pd.read_feather(p)
    if p.suffix == ".csv":
        return pd.read_csv(p)
    raise ValueError(f"{path}: expected .parquet, .feather or .csv")


def _labels(frame, column: str):
    if column not in frame.columns:
        raise ValueError(f"data has no label column {column!r} (pass --label)")
    return frame[column].to_numpy()


LIST_COLUMNS = [
    "vin",
    "version",
    "symbol",
    "side",
    "window",
    "target",
    "model_type",
    "grade",
    "gate_passed",
    "score",
    "status",
    "created",
]


# ---- commands ----------------------------------------------------------------------------------------------
def cmd_list(args) -> int:
    rows = reg.list_models(
        args.registry,
        symbol=args.symbol,
        target=args.target,
        model_type=args.model_type,
        grade=args.grade,
        side=args.side,
        status=args.status,
    )
    _emit(args, rows, f"Models in {args.registry} ({len(rows)})", LIST_COLUMNS)
    return 0


def cmd_info(args) -> int:
    _emit(args, reg.get_entry(args.registry, args.vin), f"Model {args.vin}")
    return 0


def cmd_verify(args) -> int:
    rows = reg.verify_registry(args.registry)
    if args.vins:
        unknown = sorted(set(args.vins) - {r["vin"] for r in rows})
        if unknown:
            raise reg.RegistryError(f"not registered: {unknown}")
        rows = [r for r in rows if r["vin"] in args.vins]
    bad = [r for r in rows if not r["ok"]]
    _emit(args, rows, f"Verified {len(rows)} model(s): {len(bad)} bad", ["vin", "ok", "error"])
    return 1 if bad else 0


def cmd_register(args) -> int:
    entry = reg.register(args.registry, args.folder, run=args.run, data_version=args.data_version)
    out = {k: entry[k] for k in ("vin", "version", "version_reason", "symbol", "side", "status")}
    if args.promote:
        scores = json.loads(Path(args.scores).read_text()) if args.scores else None
        scorer = None
        if args.data:
            frame = _read_frame(args.data)
            scorer = reg.macro_ap_scorer(frame, _labels(frame, args.label))
        out["promotion"] = reg.promote(
            args.registry, entry["vin"], scorer=scorer, scores=scores, margin=args.margin, run=args.run
        )
    _emit(args, out, "Registered")
    return 0


def cmd_promote(args) -> int:
    entry = reg.get_entry(args.registry, args.vin)
    if reg.is_agent(entry):  # the RL line's slot: judged on its validation / paper evidence, as runs.decide
        if args.scores or args.data:
            raise reg.RegistryError(
                f"{args.vin} is of the RL line (model type {entry['model_type']}): it is judged on its "
                "validation evidence, not on --scores / --data"
            )
        spec = config_group("registry", args.registry_config)
        decided = runs.decide(
            args.registry, [entry], spec, args.run, paper=lambda v: pt.paper_evidence(args.registry, v)
        )
        _emit(args, decided[-1], "Promotion")
        return 0
    scores = json.loads(Path(args.scores).read_text()) if args.scores else None
    scorer = None
    if args.data:
        frame = _read_frame(args.data)
        scorer = reg.macro_ap_scorer(frame, _labels(frame, args.label))
    _emit(
        args,
        reg.promote(args.registry, args.vin, scorer=scorer, scores=scores, margin=args.margin, run=args.run),
        "Promotion",
    )
    return 0


def cmd_benchmark(args) -> int:
    frame = _read_frame(args.data)
    rows = reg.benchmark(args.registry, args.vins, frame, _labels(frame, args.label))
    _emit(args, rows, f"Benchmark on {args.data}", ["vin", "symbol", "side", "version", "macro_ap", "rows"])
    return 0


def cmd_summary(args) -> int:
    _emit(args, reg.write_run_summary(args.registry, args.run), f"Run {args.run}")
    return 0


CHAMPION_TABLE_ROWS = 50  # `swingflow champions` tables list at most this many unless --top says otherwise


def cmd_champions(args) -> int:
    everyone = [r for r in reg.roster(args.registry) if not args.symbol or r["symbol"] == args.symbol]
    top = args.top if args.top is not None else (None if args.json else CHAMPION_TABLE_ROWS)
    rows = dashboard.champion_view(everyone, top) if top and len(everyone) > top else everyone
    rows = pt.with_paper(args.registry, rows, args.ledger)  # claimed (test) and paper columns
    title = f"Champions: {dashboard.grade_summary(everyone)}"
    if len(rows) < len(everyone):
        title += f"\nlisted: the {len(rows)} best by grade, then score (--top N, --top 0 for all, --symbol)"
    columns = [
        "symbol",
        "side",
        "vin",
        "version",
        "grade",
        "window",
        "target",
        "model_type",
        "score",
        "since",
        "challengers",
        "previous",
    ]
    _emit(args, rows, title, columns)
    if not args.json:  # a second table: the claimed and the paper record side by side
        rows = [r | dict(zip(paper.TEXT_COLUMNS, paper.claimed_paper_text(r))) for r in rows]
        _emit(
            args, rows, "Champions: claimed (test) vs paper", ["symbol", "side", "vin", *paper.TEXT_COLUMNS]
        )
    return 0


def cmd_paper(args) -> int:
    rows = pt.paper_trade(
        args.registry,
        args.bars,
        args.ledger,
        symbols=args.symbol,
        slots=args.slot,
        history_bars=args.history_bars,
        features_dir=args.features,
    )
    out = [
        paper.claimed_vs_paper(r)
        | {
            "appended_bars": r["appended"]["bars"],
            "appended_trades": r["appended"]["trades"],
            "ledger": r["ledger"],
        }
        for r in rows
    ]
    # the champion rules on the ledgers (docs/LIFECYCLE.md): paper challengers, demotion below the floor
    changes = pt.judge(
        args.registry, config_group("registry", args.registry_config), args.ledger, symbols=args.symbol
    )
    if changes:
        settings = config_group("env", args.env)["notifications"]
        delivered = notify.deliver(*pt.judgement_message(changes), settings)
    if args.json:
        _emit(args, {"slots": out, "changes": changes})
        return 0
    # one cell each for the claimed and the paper record: VINs must not be cut
    out = [r | dict(zip(paper.TEXT_COLUMNS, paper.claimed_paper_text(r))) for r in out]
    cols = ["slot", "symbol", "side", "vin", "model", *paper.TEXT_COLUMNS, "paper_until", "appended_bars"]
    _emit(args, out, f"Paper trading: {len(out)} deployed slot(s)", cols)
    if changes:
        rows = [
            c
            | {
                "why": c["evidence"].get("why"),
                "champion_now": c["vin"] if c["event"] == "promoted" else c.get("champion"),
            }
            for c in changes
        ]
        cols = ["symbol", "side", "event", "vin", "champion_now", "why"]
        _emit(args, rows, f"Champion changes on paper evidence (notified: {delivered})", cols)
    return 0


def cmd_rollback(args) -> int:
    _emit(args, reg.rollback(args.registry, args.symbol, args.side), f"Rolled back {args.symbol}")
    return 0


def cmd_archive(args) -> int:
    if args.agent_models:  # seed 004's agent trial archive (agents/trial_archive.py)
        rows = trial_archive.archive_trials(
            args.agent_models, args.dir or "trial_archive", args.top_percent, dry_run=args.dry_run
        )
        title = ("Would archive" if args.dry_run else "Archived") + f" {len(rows)} agent trial(s)"
        _emit(args, rows, title, ["code", "symbol", "kind", "value", "source"])
        return 0
    rows = reg.archive(args.registry, args.top_percent, archive_dir=args.dir, dry_run=args.dry_run)
    title = ("Would archive" if args.dry_run else "Archived") + f" {len(rows)} model(s)"
    _emit(args, rows, title, ["vin", "symbol", "side", "version", "grade", "score"])
    return 0


def cmd_cleanup(args) -> int:
    if args.agent_trials:  # the agent trial archive (agents/trial_archive.py)
        res = trial_archive.cleanup_trials(
            args.agent_trials,
            keep_top=args.keep_top,
            keep_days=args.keep_days,
            dry_run=args.dry_run,
            log_dirs=args.logs,
        )
        verb = "Would remove" if args.dry_run else "Removed"
        rows = [{"kind": "trial", "path": c} for c in res["trials"]] + [
            {"kind": "log", "path": p} for p in res["logs"]
        ]
        title = f"{verb} {len(res['trials'])} archived agent trial(s), {len(res['logs'])} log file(s)"
        _emit(args, res if args.json else rows, title, None if args.json else ["kind", "path"])
        return 0
    res = reg.cleanup(
        args.registry,
        keep_days=args.keep_days,
        keep_top=args.keep_top,
        dry_run=args.dry_run,
        log_dirs=args.logs,
    )
    if args.json:
        _emit(args, res)
        return 0
    verb = "Would remove" if args.dry_run else "Removed"
    rows = [{"kind": "model", "path": v} for v in res["models"]] + [
        {"kind": "log", "path": p} for p in res["logs"]
    ]
    _emit(
        args, rows, f"{verb} {len(res['models'])} model(s), {len(res['logs'])} log file(s)", ["kind", "path"]
    )
    return 0


def cmd_deploy(args) -> int:
    info = reg.deploy(args.registry, args.slot, args.vin)
    _emit(args, {k: v for k, v in info.items() if k != "files" or args.json}, f"Deployed to slot {args.slot}")
    return 0


def cmd_dashboard(args) -> int:
    if args.json:
        # every champion in roster order unless --top / --symbol limit them
        _emit(args, dashboard.snapshot(args.registry, args.results, top=args.top, symbol=args.symbol))
        return 0
    dashboard.run(
        args.registry,
        args.results,
        once=args.once,
        interval=args.interval,
        console=_console(),
        top=DASHBOARD_CHAMPIONS if args.top is None else args.top,
        symbol=args.symbol,
    )
    return 0


DASHBOARD_CHAMPIONS = 20  # champions a dashboard frame lists (the caption counts them all per grade)


def _symbols(args) -> list[str]:
    if args.symbol:
        return [reg.check_symbol(s) for s in args.symbol]
    syms = sorted({r["symbol"] for r in reg.roster(args.registry)})
    if not syms:
        raise reg.RegistryError("no champions in the registry: nothing to predict with")
    return syms


def cmd_predict(args) -> int:
    import pandas as pd

    out_dir = Path(args.out or Path(args.registry) / "predictions")
    rows = []
    for symbol in _symbols(args):
        if pr.agent_champion(args.registry, symbol):  # a position per bar, not class probabilities
            rows.append(_agent_positions(args, symbol, out_dir))
            if not pr.class_champions(args.registry, symbol):
                continue
        out = out_dir / f"{symbol}.parquet"
        if args.append:
            needed = {symbol}
            for m in pr.champion_models(args.registry, symbol):
                needed.update(m.feature_info.get("universe", []))
            bars = {}
            for s in sorted(needed):
                p = Path(args.bars) / f"{s}.parquet"
                if not p.is_file():
                    raise FileNotFoundError(
                        f"no bars for {s}: {p} (pass --bars DIR holding <SYMBOL>.parquet)"
                    )
                bars[s] = pd.read_parquet(p)
            added = pr.append_predictions(args.registry, symbol, bars, out, history_bars=args.history_bars)
            rows.append({"symbol": symbol, "mode": "append", "rows_added": added, "file": str(out)})
        else:
            preds = pr.write_batch(
                args.registry, symbol, _read_frame(str(Path(args.features) / f"{symbol}.parquet")), out
            )
            rows.append({"symbol": symbol, "mode": "batch", "rows": len(preds), "file": str(out)})
    cols = ["symbol", "mode", "rows_added" if args.append else "rows", "file"]
    if args.append and args.paper:  # the same new bars extend the paper ledgers of the symbols' slots
        symbols = [r["symbol"] for r in rows]
        for r in pt.paper_trade(args.registry, args.bars, symbols=symbols, features_dir=args.features):
            rows.append(
                {
                    "symbol": r["symbol"],
                    "mode": "paper",
                    "rows_added": r["appended"]["bars"],
                    "file": r["ledger"],
                }
            )
    _emit(args, rows, "Predictions", cols)
    return 0


def _agent_positions(args, symbol: str, out_dir: Path) -> dict:
    """The positions of `symbol`'s agent champion (predictions.write_positions): its policy replayed on the
    bars (--bars) after its last bar, observing its CNN-LSTM over the feature table (--features)."""
    import pandas as pd

    features = Path(args.features) / f"{symbol}.parquet"
    if not features.is_file():
        raise FileNotFoundError(f"no feature table for {symbol}: {features} (pass --features DIR)")
    bars = pt.read_bars(args.bars, [symbol])[symbol]
    out = out_dir / f"{symbol}.positions.parquet"
    positions = pr.write_positions(args.registry, symbol, bars, pd.read_parquet(features), out)
    n = len(positions)
    return {"symbol": symbol, "mode": "positions", "rows": n, "rows_added": n, "file": str(out)}


def cmd_vin_decode(args) -> int:
    try:
        fields = decode_vin(args.code)
    except VinError as model_error:  # an agent trial code (agents/trial_code.py)?
        try:
            fields = trial_code.decode(args.code)
        except trial_code.TrialCodeError:
            raise model_error from None
    _emit(args, fields, f"VIN {args.code}")
    return 0


# ---- parser ------------------------------------------------------------------------------------------------
def _common(suppress: bool) -> argparse.ArgumentParser:
    """--registry and --json, accepted before or after the subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    kw = {"default": argparse.SUPPRESS} if suppress else {}
    p.add_argument(
        "--registry",
        help="registry folder (default $SWINGFLOW_REGISTRY or registry/local-dev)",
        **(kw or {"default": os.environ.get("SWINGFLOW_REGISTRY", DEFAULT_REGISTRY)}),
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables", **kw)
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common(suppress=True)
    parser = argparse.ArgumentParser(
        prog="swingflow", description=__doc__.split("\n")[0], parents=[_common(False)]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(subparsers, name, func, help_):
        p = subparsers.add_parser(name, help=help_, description=help_, parents=[common])
        p.set_defaults(func=func)
        return p

    r = sub.add_parser("registry", help="list, inspect, verify, register, promote, benchmark models")
    rsub = r.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    p = add(rsub, "list", cmd_list, "list registered models (newest first)")
    p.add_argument("--symbol")
    p.add_argument("--target")
    p.add_argument("--model-type")
    p.add_argument("--grade")
    p.add_argument("--side", choices=reg.SIDES)
    p.add_argument("--status", choices=reg.STATUSES)
    p = add(rsub, "info", cmd_info, "one model's index entry")
    p.add_argument("vin")
    p = add(rsub, "verify", cmd_verify, "check every model folder against its hashes (exit 1 if any is bad)")
    p.add_argument("vins", nargs="*")
    for name, func, help_ in (
        ("register", cmd_register, "register a production folder"),
        ("promote", cmd_promote, "champion or challenger for a registered model"),
    ):
        p = add(rsub, name, func, help_)
        if name == "register":
            p.add_argument("folder")
            p.add_argument(
                "--data-version", help="sha256 of the ingested bars (else config.json dependencies)"
            )
            p.add_argument("--promote", action="store_true", help="then decide champion / challenger")
        else:
            p.add_argument("vin")
        p.add_argument("--run", help="run id for runs/<run>/status.json")
        p.add_argument("--margin", type=float, default=0.0, help="new score must beat the champion's by this")
        p.add_argument("--data", help="common recent scoring data: feature columns + label column")
        p.add_argument("--label", default="label")
        p.add_argument("--scores", help="JSON file {VIN: score} of precomputed scores")
        p.add_argument(
            "--registry-config",
            help="an agent (RL line): config/registry option whose compare rules judge its validation "
            "evidence (default: the default)",
        )
    p = add(
        rsub, "benchmark", cmd_benchmark, "score several models on the same data (macro average precision)"
    )
    p.add_argument("vins", nargs="+")
    p.add_argument(
        "--data", required=True, help="parquet/feather/csv with the feature columns and a label column"
    )
    p.add_argument("--label", default="label", help="label column (codes 0/1/2 scored, others ignored)")
    p = add(rsub, "summary", cmd_summary, "write summary/<run>/engine_summary.json")
    p.add_argument("run")

    p = add(sub, "champions", cmd_champions, "the champion roster, claimed (test) next to paper metrics")
    p.add_argument("--symbol")
    p.add_argument("--ledger", help="paper ledgers (default <registry>/paper)")
    p.add_argument(
        "--top",
        type=int,
        help=f"list the N best by grade, then score (default: all with --json, {CHAMPION_TABLE_ROWS} in "
        "tables; 0 = all); the title counts every champion per grade",
    )
    p = add(sub, "paper", cmd_paper, "paper-trade the deployed slots on bars newer than their training data")
    p.add_argument("--symbol", nargs="*", help="only the slots of these symbols")
    p.add_argument("--slot", type=int, nargs="*", help="only these slots")
    p.add_argument("--bars", default="results/ingest", help="folder of <SYMBOL>.parquet bars")
    p.add_argument("--ledger", help="ledger folder (default <registry>/paper)")
    p.add_argument("--history-bars", type=int, help="trailing bars for features (default features.json)")
    p.add_argument(
        "--features",
        default="results/features",
        help="agent slots: folder of <SYMBOL>.parquet feature tables (the CNN-LSTM's input)",
    )
    p.add_argument(
        "--registry-config",
        help="config/registry option whose compare/demotion rules judge the ledgers (default: the default)",
    )
    p.add_argument(
        "--env",
        default=os.environ.get("SWINGFLOW_ENV"),
        help="config/env option whose notifications announce champion changes (default $SWINGFLOW_ENV, "
        "else config.yaml's)",
    )
    p = add(sub, "rollback", cmd_rollback, "make the previous champion of SYMBOL champion again")
    p.add_argument("symbol")
    p.add_argument("--side", choices=reg.SIDES)
    p = add(sub, "archive", cmd_archive, "copy the best models with metadata to the archive")
    p.add_argument("--top-percent", type=float, default=10.0)
    p.add_argument(
        "--dir", help="archive folder (default <registry>/archive; trial_archive with --agent-models)"
    )
    p.add_argument(
        "--agent-models", help="archive agent trials instead: results/agents/models (per-symbol trials.json)"
    )
    p.add_argument("--dry-run", action="store_true")
    p = add(sub, "cleanup", cmd_cleanup, "remove old logs and old non-champion, non-archived models")
    p.add_argument("--keep-days", type=float, default=7)
    p.add_argument("--keep-top", type=int, default=20)
    p.add_argument("--logs", nargs="*", default=[], help="extra log folders to prune (registry logs/ always)")
    p.add_argument(
        "--agent-trials", help="clean this agent trial archive (trial_archive/) instead of the registry"
    )
    p.add_argument("--dry-run", action="store_true")
    p = add(sub, "deploy", cmd_deploy, "write a model to deployments/model_N (best champion by default)")
    p.add_argument("--slot", type=int, required=True)
    p.add_argument("vin", nargs="?")
    p = add(sub, "dashboard", cmd_dashboard, "live terminal view of progress, models, champions, slots")
    p.add_argument("--once", action="store_true", help="print one frame and exit")
    p.add_argument("--results", default="results")
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument(
        "--top",
        type=int,
        help=f"champions listed: the N best by grade, then score (default {DASHBOARD_CHAMPIONS}; "
        "with --json all; 0 = all)",
    )
    p.add_argument("--symbol", help="list only this symbol's champions")
    p = add(sub, "predict", cmd_predict, "champion predictions: batch over features, or --append new bars")
    p.add_argument("--symbol", nargs="*")
    p.add_argument("--append", action="store_true", help="only bars newer than the last prediction")
    p.add_argument(
        "--features",
        default="results/features",
        help="batch (and an agent champion's positions): folder of <SYMBOL>.parquet feature tables",
    )
    p.add_argument(
        "--bars",
        default="results/ingest",
        help="append (and an agent champion's positions): folder of <SYMBOL>.parquet bars",
    )
    p.add_argument(
        "--history-bars", type=int, help="append: trailing bars for features (default features.json)"
    )
    p.add_argument("--out", help="folder for <SYMBOL>.parquet (default <registry>/predictions)")
    p.add_argument(
        "--paper",
        action="store_true",
        help="append: also extend the paper ledgers of the symbols' deployed slots",
    )
    v = sub.add_parser("vin", help="VIN codes")
    vsub = v.add_subparsers(dest="vin_command", required=True, metavar="ACTION")
    p = add(vsub, "decode", cmd_vin_decode, "decode a VIN into its fields")
    p.add_argument("code")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, KeyError, OSError, RuntimeError) as exc:  # RegistryError, VinError are ValueErrors
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, KeyError):
            msg = f"missing key {msg}"
        print(f"swingflow: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
