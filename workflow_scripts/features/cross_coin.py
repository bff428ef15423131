"""Cross-coin columns of a coin's feature table, from other coins' own (base) feature tables.

Two modes (features group, key `cross_coin`; docs/FEATURES.md):

- `basket` (default): a fixed list of reference coins (`basket`, BTCUSDT and ETHUSDT by default). Each coin's
  table gets the basket coins' base columns (all of them, or the `columns` selectors) as `{SYMBOL}__{column}`,
  never its own (a coin in the basket references the other basket coins only), plus optional market factors
  computed per bar from the basket coins alone: `BASKET__{factor}__{column}` for each `factor_inputs` column.
  A coin's table depends on its own bars and the basket's, never on the rest of the universe, so its width and
  cost do not grow with the universe and adding or removing a coin outside the basket changes no other table.
- `all_pairs`: every other coin of the universe (today's table; its width grows with the universe, so it is
  for small universes only).

Time semantics and listing dates (the stated rule): the joined value at row t is the basket coin's own feature
at the same timestamp t, so it is known at t. Where the basket coin has no bar at t (before it lists, after
it delists, in its gaps) its columns are NaN; nothing is filled forward or backward. A market factor at t
uses the basket coins that have a finite value at t: `mean` needs one, `dispersion` (population standard
deviation across the basket) needs two, `relative` (this coin's value minus the basket mean) needs this
coin's value and one basket value; otherwise NaN. A basket coin that lists later joins the factors from its
first value on.

Selectors (`columns`, `factor_inputs`): a base column name (`time__hour_sin`, `tech__ret_21`) or a stem
that stands for it at every lookback and lag (`tech__ret` -> `tech__ret_3`, `tech__ret_5`, `tech__ret_5_lag1`,
...), so a selector keeps working when the lookbacks change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

MODES = ("basket", "all_pairs")
FACTORS = ("mean", "dispersion", "relative")
CROSS_KEYS = ("mode", "basket", "columns", "factors", "factor_inputs")
FACTOR_PREFIX = "BASKET"  # the "source" of the factor columns (a coin-like prefix: selection's screening
# counts a row as missing for it where no basket coin had a value)
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")
SELECTOR_RE = re.compile(r"^[a-z]+__[A-Za-z0-9_]+$")

__all__ = [
    "CROSS_KEYS",
    "FACTORS",
    "FACTOR_PREFIX",
    "MODES",
    "add_cross_coin",
    "basket_factors",
    "cross_coin_table",
    "reference_coins",
    "select_columns",
    "validate_cross_coin",
]


# -- config --------------------------------------------------------------------------------------------------
def _str_list(cc: Mapping, key: str, pattern: re.Pattern, what: str) -> list[str]:
    val = cc[key]
    if not isinstance(val, (list, tuple)) or any(not isinstance(x, str) or not pattern.match(x) for x in val):
        raise ValueError(f"features spec key 'cross_coin.{key}': got {val!r}; allowed: a list of {what}")
    if len(set(val)) != len(val):
        raise ValueError(f"features spec key 'cross_coin.{key}': duplicates in {list(val)!r}")
    return list(val)


def validate_cross_coin(cc: Mapping) -> dict:
    """Check the `cross_coin` mapping (all of CROSS_KEYS, nothing else; `{"mode": "all_pairs"}` alone is the
    slice the all_pairs rule reads) and return a normalised copy. Whether the selectors name real base columns
    is checked by `features.validate_spec`, which knows the families."""
    if not isinstance(cc, Mapping):
        raise ValueError(
            f"features spec key 'cross_coin': got {cc!r}; allowed: a mapping with {list(CROSS_KEYS)}"
        )
    if dict(cc) == {"mode": "all_pairs"}:
        return {"mode": "all_pairs"}
    missing = [k for k in CROSS_KEYS if k not in cc]
    unknown = [k for k in cc if k not in CROSS_KEYS]
    if missing or unknown:
        bad = missing[0] if missing else unknown[0]
        raise ValueError(
            f"features spec key 'cross_coin.{bad}' is {'missing' if missing else 'unknown'}; "
            f"required keys: {list(CROSS_KEYS)}"
        )
    if cc["mode"] not in MODES:
        raise ValueError(f"features spec key 'cross_coin.mode': got {cc['mode']!r}; allowed: {list(MODES)}")
    basket = _str_list(cc, "basket", SYMBOL_RE, "distinct symbols like BTCUSDT")
    if FACTOR_PREFIX in basket:
        raise ValueError(f"features spec key 'cross_coin.basket': {FACTOR_PREFIX!r} names the factor columns")
    columns = cc["columns"]
    if columns != "all":
        if not isinstance(columns, (list, tuple)) or not columns:
            raise ValueError(
                f"features spec key 'cross_coin.columns': got {columns!r}; allowed: 'all' or a non-empty "
                "list of base column names or stems like tech__ret"
            )
        columns = _str_list(cc, "columns", SELECTOR_RE, "base column names or stems like tech__ret")
    factors = _str_list(cc, "factors", re.compile(r"^\w+$"), f"names from {list(FACTORS)}")
    unknown_factors = [f for f in factors if f not in FACTORS]
    if unknown_factors:
        raise ValueError(
            f"features spec key 'cross_coin.factors': unknown {unknown_factors}; allowed: {list(FACTORS)}"
        )
    inputs = _str_list(cc, "factor_inputs", SELECTOR_RE, "base column names or stems like tech__ret")
    if factors and not inputs:
        raise ValueError("features spec key 'cross_coin.factor_inputs': empty, but factors are asked for")
    if factors and not basket and cc["mode"] == "basket":
        raise ValueError("features spec key 'cross_coin.factors': factors need a non-empty basket")
    return {
        "mode": cc["mode"],
        "basket": basket,
        "columns": columns,
        "factors": [f for f in FACTORS if f in factors],
        "factor_inputs": inputs,
    }


def reference_coins(symbol: str, universe: Sequence[str], cc: Mapping) -> list[str]:
    """The coins whose base tables `symbol`'s cross-coin table reads, sorted: the basket without `symbol`, or
    every other coin of the universe (all_pairs). A basket coin that is not a universe coin is a config error:
    the workflow builds base features only for the universe's coins (from their raw files)."""
    cc = validate_cross_coin(cc)
    if cc["mode"] == "all_pairs":
        return sorted(s for s in universe if s != symbol)
    outside = [b for b in cc["basket"] if b not in universe]
    if outside:
        raise ValueError(
            f"features.cross_coin.basket: {', '.join(outside)} not in universe.symbols {list(universe)}; a "
            "basket coin's features are built from its raw bars like every universe coin's, so add it to the "
            "universe (with its raw file in env.data.raw_dir) or take it out of the basket"
        )
    return sorted(b for b in cc["basket"] if b != symbol)


def _selector_re(selector: str) -> re.Pattern:
    return re.compile(rf"^{re.escape(selector)}(_\d+)?(_lag\d+)?$")


def select_columns(columns: Iterable[str], selectors: Sequence[str] | str, what: str) -> list[str]:
    """The base columns (timestamp excluded, table order) that the selectors pick; 'all' picks every one.
    A selector that picks nothing is an error naming it and `what` (the table)."""
    columns = [c for c in columns if c != "timestamp"]
    if selectors == "all":
        return columns
    picked = set()
    for s in selectors:
        rx = _selector_re(s)
        hits = [c for c in columns if rx.match(c)]
        if not hits:
            raise ValueError(
                f"{what}: cross-coin selector {s!r} matches no base column (a name like tech__ret_21 or a "
                "stem like tech__ret of this table)"
            )
        picked.update(hits)
    return [c for c in columns if c in picked]


# -- tables --------------------------------------------------------------------------------------------------
def _ts_ns(frame: pd.DataFrame, what: str) -> np.ndarray:
    if "timestamp" not in frame.columns:
        raise ValueError(f"{what} has no 'timestamp' column")
    ts = frame["timestamp"]
    if not pd.api.types.is_datetime64_any_dtype(ts):
        raise ValueError(f"{what} 'timestamp' must be datetime64, got {ts.dtype}")
    if not ts.is_unique:
        raise ValueError(f"{what} has duplicate timestamps")
    return ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def _aligned(own_index: pd.Index, other: pd.DataFrame, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Row of `other` at each of own's timestamps (0 where absent) and the absent mask."""
    idx = pd.Index(_ts_ns(other, what)).get_indexer(own_index)
    absent = idx < 0
    return np.where(absent, 0, idx), absent


def _column(frame: pd.DataFrame, c: str, take: np.ndarray, absent: np.ndarray) -> np.ndarray:
    col = frame[c].to_numpy(dtype=np.float32, na_value=np.nan)
    if not len(col):
        return np.full(len(take), np.nan, dtype=np.float32)
    out = col[take]
    out[absent | ~np.isfinite(out)] = np.nan
    return out


def add_cross_coin(
    own: pd.DataFrame, others: Mapping[str, pd.DataFrame], columns: Mapping[str, Sequence[str]] | None = None
) -> pd.DataFrame:
    """`own` (this coin's feature table) plus the other coins' feature columns as `{SYMBOL}__{column}`, in
    sorted symbol order, left-joined on own's timestamps: NaN where the other coin has no bar at that
    timestamp (before its listing, in its gaps). The other coin's value at t is its own feature at t, so
    still known at t. `columns` optionally names, per symbol, which of its columns to take (default: all).
    float32; inputs are not modified."""
    own_ns = _ts_ns(own, "own feature table")
    own_cols = [c for c in own.columns if c != "timestamp"]
    plan: list[tuple[str, list[str]]] = []
    for sym in sorted(others):
        if not isinstance(sym, str) or not SYMBOL_RE.match(sym):
            raise ValueError(f"cross-coin symbol {sym!r} must match {SYMBOL_RE.pattern}")
        cols = [c for c in others[sym].columns if c != "timestamp"]
        plan.append((sym, cols if columns is None else list(columns[sym])))
    names = own_cols + [f"{sym}__{c}" for sym, cols in plan for c in cols]
    if len(set(names)) != len(names):
        raise ValueError("cross-coin column names collide (is `own` already a cross-coin table?)")

    mat = np.empty((len(own), len(names)), dtype=np.float32, order="F")
    for j, c in enumerate(own_cols):
        mat[:, j] = own[c].to_numpy(dtype=np.float32, na_value=np.nan)
        mat[~np.isfinite(mat[:, j]), j] = np.nan
    j = len(own_cols)
    own_index = pd.Index(own_ns)
    for sym, cols in plan:
        take, absent = _aligned(own_index, others[sym], f"{sym} feature table")
        for c in cols:
            mat[:, j] = _column(others[sym], c, take, absent)
            j += 1
    out = pd.DataFrame(mat, columns=names, copy=False)
    out.insert(0, "timestamp", own["timestamp"].array)
    return out


def basket_factors(
    own: pd.DataFrame, basket: Mapping[str, pd.DataFrame], factors: Sequence[str], inputs: Sequence[str]
) -> pd.DataFrame:
    """Market factors on own's timestamps (no timestamp column): for each base column `c` picked by the
    `inputs` selectors (from own's columns), `BASKET__mean__c`, `BASKET__dispersion__c` and
    `BASKET__relative__c` as asked, over the basket tables' values at the same timestamp (module docstring
    for the minimum counts). `basket` holds every basket coin's base table, this coin's own included when it
    is a basket coin. float32."""
    cols = select_columns(own.columns, inputs, "own feature table") if factors else []
    own_index = pd.Index(_ts_ns(own, "own feature table"))
    aligned = {s: _aligned(own_index, basket[s], f"{s} feature table") for s in sorted(basket)}
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for c in cols:
            for s in basket:
                if c not in basket[s].columns:
                    raise ValueError(f"{s} feature table has no column {c!r} (factor input)")
            values = np.stack(
                [_column(basket[s], c, *aligned[s]).astype(np.float64) for s in sorted(basket)], axis=1
            )
            count = np.isfinite(values).sum(axis=1)
            total = np.where(np.isfinite(values), values, 0.0).sum(axis=1)
            mean = np.where(count >= 1, total / np.maximum(count, 1), np.nan)
            if "mean" in factors:
                out[f"{FACTOR_PREFIX}__mean__{c}"] = mean
            if "dispersion" in factors:
                dev = np.where(np.isfinite(values), values - mean[:, None], 0.0)
                var = (dev**2).sum(axis=1) / np.maximum(count, 1)
                out[f"{FACTOR_PREFIX}__dispersion__{c}"] = np.where(count >= 2, np.sqrt(var), np.nan)
            if "relative" in factors:
                out[f"{FACTOR_PREFIX}__relative__{c}"] = own[c].to_numpy(dtype=np.float64) - mean
    frame = pd.DataFrame({k: v.astype(np.float32) for k, v in out.items()}, index=own.index)
    return frame.where(np.isfinite(frame), np.nan) if len(frame.columns) else frame


def cross_coin_table(
    symbol: str, own: pd.DataFrame, others: Mapping[str, pd.DataFrame], cc: Mapping
) -> pd.DataFrame:
    """`symbol`'s cross-coin table from its own base table and the base tables of `reference_coins` (exactly
    those: `others` is checked against them, the universe being the others' symbols in all_pairs mode)."""
    cc = validate_cross_coin(cc)
    if cc["mode"] == "all_pairs":
        return add_cross_coin(own, others)
    expected = sorted(b for b in cc["basket"] if b != symbol)
    if sorted(others) != expected:
        raise ValueError(
            f"{symbol}: cross-coin inputs are {sorted(others)}, expected the basket without the coin itself "
            f"{expected} (features.cross_coin.basket)"
        )
    picked = {s: select_columns(t.columns, cc["columns"], f"{s} feature table") for s, t in others.items()}
    table = add_cross_coin(own, others, picked)
    if not cc["factors"]:
        return table
    basket = {s: (own if s == symbol else others[s]) for s in cc["basket"]}
    factors = basket_factors(own, basket, cc["factors"], cc["factor_inputs"])
    return pd.concat([table, factors.set_axis(table.index)], axis=1)
