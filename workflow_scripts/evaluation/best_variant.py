"""Rank the stage-1 variants of each (symbol, window, side) and summarise the winners.

Ranking key: validation macro average precision, higher first; ties broken by target id so the choice is
deterministic. Skipped variants (too few rows) are listed but never chosen.

Two files per (symbol, window, side): the choice (`best_of`: the decision, validation facts only, what tuning
and production read) and its report (`report_of`: the same ranking with the test score and the after-cost
evaluation beside each variant, what summaries, plots and the report read). A change that only touches the
report (costs, gates, grades, a test bar) leaves the choice byte-identical, so nothing trained downstream of
it is replanned (docs/ARCHITECTURE.md, "Reruns").
"""

from __future__ import annotations

import pandas as pd

from workflow_scripts.targets.grammar import parse_target_id


def evaluation_columns(result: dict | None) -> dict:
    """The after-cost facts of one variant's evaluation that a person wants beside its rank."""
    if not result or result.get("status") != "evaluated":
        return {
            "n_trades": None,
            "net_total_return": None,
            "sharpe_per_trade": None,
            "dsr": None,
            "max_drawdown": None,
            "grade": None,
            "gate_passed": None,
            "vin": None,
        }
    after = result["after_costs"]
    return {
        "n_trades": after["n_trades"],
        "net_total_return": after["total_return"],
        "sharpe_per_trade": after["sharpe_per_trade"],
        "dsr": after["dsr"],
        "max_drawdown": after["max_drawdown"],
        "grade": result["grade"]["grade"],
        "gate_passed": result["gate"]["passed"],
        "vin": result["vin"],
    }


# The columns of a choice: what stage 1 knows before the test segment is looked at.
DECISION_COLUMNS = (
    "rank",
    "target",
    "type",
    "k",
    "theta",
    "status",
    "validation_average_precision",
    "best_iteration",
    "train_rows",
    "reason",
)


def rank_variants(metrics: list[dict], evaluations: dict[str, dict] | None = None) -> pd.DataFrame:
    """Every variant with its rank by validation AP (report columns included: test AP and, with
    `evaluations`, the after-cost facts)."""
    rows = []
    evaluations = evaluations or {}
    for m in metrics:
        t = parse_target_id(m["target"])
        rows.append(
            {
                "target": m["target"],
                "type": t["type"],
                "k": t["k"],
                "theta": t["theta"],
                "status": m["status"],
                "validation_average_precision": m.get("validation_average_precision", float("nan")),
                "test_average_precision": m.get("test_average_precision", float("nan")),
                "best_iteration": m.get("best_iteration"),
                "train_rows": m["rows"]["train"],
                "reason": m.get("reason", ""),
            }
            | evaluation_columns(evaluations.get(m["target"]))
        )
    table = pd.DataFrame(rows)
    table["_trained"] = table["status"] == "trained"
    table = table.sort_values(
        ["_trained", "validation_average_precision", "target"],
        ascending=[False, False, True],
        na_position="last",
    ).drop(columns="_trained")
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.reset_index(drop=True)


def best_of(symbol: str, window: int, side: str, metrics: list[dict]) -> dict:
    """The choice of one (symbol, window, side): the ranking by validation AP, decision columns only."""
    return _ranked_document(symbol, window, side, rank_variants(metrics)[list(DECISION_COLUMNS)])


def report_of(choice: dict, metrics: list[dict], evaluations: dict[str, dict]) -> dict:
    """The report of a choice: the same ranking with the test AP and after-cost evaluation of each variant."""
    report = _ranked_document(
        choice["symbol"], choice["window"], choice["side"], rank_variants(metrics, evaluations)
    )
    chosen = (choice["best"] or {}).get("target")
    ranked = (report["best"] or {}).get("target")
    if ranked != chosen:
        raise ValueError(
            f"the report's ranking chose {ranked!r} but the choice is {chosen!r} ({choice['symbol']} "
            f"w{choice['window']} {choice['side']}): stage-1 metrics changed after the pick"
        )
    return report


def _ranked_document(symbol: str, window: int, side: str, ranked: pd.DataFrame) -> dict:
    trained = ranked[ranked["status"] == "trained"]
    best = trained.iloc[0].to_dict() if len(trained) else None
    return {
        "symbol": symbol,
        "window": int(window),
        "side": side,
        "best": best,
        "variants_ranked": ranked.to_dict(orient="records"),
        "trained": int(len(trained)),
        "skipped": int(len(ranked) - len(trained)),
    }


def summary_table(choices: list[dict]) -> pd.DataFrame:
    rows = []
    for c in choices:
        best = c["best"] or {}
        rows.append(
            {
                "symbol": c["symbol"],
                "window": c["window"],
                "side": c["side"],
                "best_target": best.get("target"),
                "validation_average_precision": best.get("validation_average_precision"),
                "test_average_precision": best.get("test_average_precision"),
                "best_iteration": best.get("best_iteration"),
                "variants_trained": c["trained"],
                "variants_skipped": c["skipped"],
            }
            | {
                k: best.get(k)
                for k in (
                    "n_trades",
                    "net_total_return",
                    "sharpe_per_trade",
                    "dsr",
                    "grade",
                    "gate_passed",
                    "vin",
                )
            }
        )
    return pd.DataFrame(rows).sort_values(["symbol", "window", "side"]).reset_index(drop=True)


def headline_metrics(table: pd.DataFrame) -> dict:
    """A few numbers worth tracking across runs (`dvc metrics diff`)."""
    val, test = table["validation_average_precision"], table["test_average_precision"]
    return {
        "combinations": int(len(table)),
        "combinations_without_trained_variant": int(table["best_target"].isna().sum()),
        "variants_trained": int(table["variants_trained"].sum()),
        "variants_skipped": int(table["variants_skipped"].sum()),
        "mean_validation_average_precision": round(float(val.mean()), 6),
        "mean_test_average_precision": round(float(test.mean()), 6),
    }


def _whole_numbers(column: pd.Series) -> bool:
    values = pd.to_numeric(column, errors="coerce").dropna()
    is_number = column.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)) | column.isna()
    return bool(len(values)) and bool(is_number.all()) and bool((values == values.round()).all())


def _cell(v, whole: bool) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return str(int(v)) if whole else f"{v:.4f}"
    return str(v)


def to_markdown(table: pd.DataFrame, title: str) -> str:
    """A plain pipe table (no extra dependency): floats to 4 decimals, except in a column whose values are all
    whole numbers (counts that pandas turned into floats because a row lacked them), which prints integers."""
    cols = list(table.columns)
    whole = {c for c in cols if _whole_numbers(table[c])}
    lines = [f"# {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        cells = [_cell(v, c in whole) for c, v in zip(cols, row.tolist())]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
