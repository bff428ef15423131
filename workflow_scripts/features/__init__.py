"""Per-coin feature tables from hourly bars, and the cross-coin table built from them.

`build_features(bars, spec)` turns one coin's bars (docs/CONTRACTS.md: `timestamp` + OHLCV, sorted, unique,
gaps kept) into `timestamp` + float32 columns `{family}__{name}`; `cross_coin_table(symbol, own, others, cc)`
(module `cross_coin`) appends the basket coins' columns as `{SYMBOL}__{family}__{name}`, aligned on timestamp,
plus optional basket factors (`cross_coin.mode: basket`), or every other coin's (`all_pairs`,
`add_cross_coin(own, others)`).

Time semantics: bar t opens at `timestamp` t; every value at row t is computed from rows 0..t only. Gap rule
(two consecutive timestamps more than one hour apart make a gap): a windowed value whose window would reach
back across a gap is NaN until the window has refilled after it, and recursive smoothers (EMA, Wilder) restart
after each gap, so every value after a gap equals the value computed on the post-gap bars alone. Details in
`_core`.

Families (module per family): `candle` (candlestick), `tech` (technical), `time` (temporal), `struct`
(market_structure), `vol` (volatility). Each gives per-bar ("static") features and per-lookback features
`{name}_{n}`; `lags` add causal copies `{name}_{n}_lag{k}` (value k bars earlier in the same segment, NaN if
the segment is shorter) of every per-lookback feature. Divisions by zero give NaN, never inf; any inf left
(float32 overflow) becomes NaN.

Column order is deterministic: families in the order above (whatever order the spec lists them in), per family
the static features, then per-lookback features by increasing lookback, then the lag blocks by increasing lag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import pandas as pd

from . import candlestick, market_structure, technical, temporal, volatility
from ._core import Bars
from .cross_coin import SYMBOL_RE, add_cross_coin, cross_coin_table, reference_coins, validate_cross_coin

FAMILIES = {
    "candle": candlestick,
    "tech": technical,
    "time": temporal,
    "struct": market_structure,
    "vol": volatility,
}
SPEC_KEYS = ("families", "lookbacks", "lags", "dtype")
OPTIONAL_KEYS = ("cross_coin",)  # read by the cross-coin step (module cross_coin), not by build_features
DTYPES = ("float32",)
LOOKBACK_RANGE = (3, 2000)  # bars; at least 3 so a window has a spread, vol_ratio reads 4n bars
LAG_RANGE = (1, 1000)  # bars

BAR_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")

__all__ = [
    "FAMILIES",
    "SYMBOL_RE",
    "add_cross_coin",
    "build_features",
    "cross_coin_table",
    "feature_count",
    "feature_names",
    "reference_coins",
    "validate_cross_coin",
    "validate_spec",
]


# -- spec ----------------------------------------------------------------------------------------------------
def _int_list(spec, key, lo, hi, allow_empty):
    val = spec[key]
    allowed = f"a list of distinct integers in [{lo}, {hi}]" + ("" if allow_empty else ", not empty")
    if not isinstance(val, (list, tuple)) or (not val and not allow_empty):
        raise ValueError(f"features spec key '{key}': got {val!r}; allowed: {allowed}")
    for x in val:
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not lo <= x <= hi:
            raise ValueError(f"features spec key '{key}': bad value {x!r}; allowed: {allowed}")
    if len(set(val)) != len(val):
        raise ValueError(f"features spec key '{key}': duplicates in {list(val)!r}; allowed: {allowed}")
    return sorted(int(x) for x in val)


def validate_spec(spec: Mapping) -> dict:
    """Check a features spec (all of families, lookbacks, lags, dtype; optionally cross_coin, nothing else)
    and return a normalised copy of what build_features reads (lookbacks and lags sorted, families in
    canonical order; cross_coin checked, selectors against the families' column names, and left out). Raises
    ValueError naming the offending key."""
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"features spec must be a mapping with keys {list(SPEC_KEYS)}, got {type(spec).__name__}"
        )
    for key in SPEC_KEYS:
        if key not in spec:
            raise ValueError(f"features spec key '{key}' is missing; required keys: {list(SPEC_KEYS)}")
    for key in spec:
        if key not in SPEC_KEYS + OPTIONAL_KEYS:
            raise ValueError(
                f"features spec key '{key}' is unknown; allowed keys: {list(SPEC_KEYS + OPTIONAL_KEYS)}"
            )
    fams = spec["families"]
    if (
        not isinstance(fams, (list, tuple))
        or not fams
        or any(f not in FAMILIES for f in fams)
        or len(set(fams)) != len(fams)
    ):
        raise ValueError(
            f"features spec key 'families': got {fams!r}; allowed: a non-empty list of distinct "
            f"names from {list(FAMILIES)}"
        )
    if spec["dtype"] not in DTYPES:
        raise ValueError(f"features spec key 'dtype': got {spec['dtype']!r}; allowed: {list(DTYPES)}")
    out = {
        "families": [f for f in FAMILIES if f in fams],
        "lookbacks": _int_list(spec, "lookbacks", *LOOKBACK_RANGE, allow_empty=False),
        "lags": _int_list(spec, "lags", *LAG_RANGE, allow_empty=True),
        "dtype": spec["dtype"],
    }
    if "cross_coin" in spec:
        _check_selectors(validate_cross_coin(spec["cross_coin"]), out)
    return out


@lru_cache(maxsize=16)
def _name_shapes(families: tuple[str, ...]) -> tuple[frozenset, frozenset]:
    """(static column names, stems of the per-lookback columns) of `families`, from a one-lookback build."""
    names = feature_names({"families": list(families), "lookbacks": [3], "lags": [], "dtype": "float32"})
    stems = frozenset(n[: -len("_3")] for n in names if n.endswith("_3"))
    return frozenset(n for n in names if not n.endswith("_3")), stems


def _check_selectors(cc: dict, spec: dict) -> None:
    """Each cross-coin selector in use (columns in basket mode, factor_inputs when factors are asked for)
    names a column this spec builds: a static name, a stem, or a stem with one of the spec's lookbacks (and
    lags)."""
    static, stems = _name_shapes(tuple(spec["families"]))
    shape = re.compile(r"^(?P<stem>.+?)_(?P<n>\d+)(_lag(?P<k>\d+))?$")
    in_use = {
        "columns": cc["columns"] if cc["mode"] == "basket" and cc["columns"] != "all" else [],
        "factor_inputs": cc["factor_inputs"] if cc["mode"] == "basket" and cc["factors"] else [],
    }
    for key, selectors in in_use.items():
        for sel in selectors:
            m = shape.match(sel)
            ok = (
                sel in static
                or sel in stems
                or bool(
                    m
                    and m["stem"] in stems
                    and int(m["n"]) in spec["lookbacks"]
                    and (m["k"] is None or int(m["k"]) in spec["lags"])
                )
            )
            if not ok:
                raise ValueError(
                    f"features spec key 'cross_coin.{key}': {sel!r} is not a column this spec builds; "
                    "allowed: a static name like time__hour_sin, a stem like tech__ret, or a stem with a "
                    f"lookback of {spec['lookbacks']} like tech__ret_{spec['lookbacks'][0]}"
                )


def _check_bars(bars: pd.DataFrame) -> None:
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack columns {missing}; need {list(BAR_COLUMNS)}")
    if not pd.api.types.is_datetime64_any_dtype(bars["timestamp"]):
        raise ValueError(f"bars 'timestamp' must be datetime64 (UTC), got {bars['timestamp'].dtype}")
    if not bars["timestamp"].is_monotonic_increasing or not bars["timestamp"].is_unique:
        raise ValueError("bars 'timestamp' must be sorted and unique")


# -- build ---------------------------------------------------------------------------------------------------
def _to_f32(x: np.ndarray) -> np.ndarray:
    out = np.asarray(x).astype(np.float32)
    out[~np.isfinite(out)] = np.nan
    return out


def _lagged(x: np.ndarray, k: int, pos: np.ndarray, out: np.ndarray) -> None:
    out[:k] = np.nan
    out[k:] = x[: len(x) - k]
    out[pos < k] = np.nan


def build_features(bars: pd.DataFrame, spec: Mapping) -> pd.DataFrame:
    """One coin's own feature table: `timestamp` + float32 `{family}__{name}` columns, one row per bar,
    same order (RangeIndex). Value at row t uses bars 0..t only; see the module docstring for the gap rule.
    `bars` is not modified."""
    spec = validate_spec(spec)
    _check_bars(bars)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        b = Bars(bars)
        cols: list[np.ndarray] = []
        # Final column order: (name, index into cols, lag; 0 = the column itself).
        plan: list[tuple[str, int, int]] = []
        for fam in spec["families"]:
            static, rolled = FAMILIES[fam].build(b, spec["lookbacks"])
            for name, x in static.items():
                plan.append((f"{fam}__{name}", len(cols), 0))
                cols.append(_to_f32(x))
            first_rolled = len(plan)
            for name, x in rolled.items():
                plan.append((f"{fam}__{name}", len(cols), 0))
                cols.append(_to_f32(x))
            del static, rolled
            rolled_plan = plan[first_rolled:]
            for k in spec["lags"]:
                plan += [(f"{name}_lag{k}", j, k) for name, j, _ in rolled_plan]

        # Column-major so each column is contiguous and the DataFrame wraps it as one block without copying.
        mat = np.empty((b.n, len(plan)), dtype=np.float32, order="F")
        for i, (_, j, k) in enumerate(plan):
            if k == 0:
                mat[:, i] = cols[j]
            else:
                _lagged(cols[j], k, b.pos, mat[:, i])
        del cols
        names = [name for name, _, _ in plan]

    dup = pd.Index(names)[pd.Index(names).duplicated()]
    if len(dup) or not all(NAME_RE.match(n) for n in names):
        raise AssertionError(f"feature names must be unique and match {NAME_RE.pattern}: {list(dup)[:5]}")
    out = pd.DataFrame(mat, columns=names, copy=False)
    out.insert(0, "timestamp", bars["timestamp"].array)
    return out


def _synthetic_bars(rows: int = 2) -> pd.DataFrame:
    ts = pd.date_range("2024-01-01", periods=rows, freq="h", tz="UTC")
    one = np.ones(rows)
    return pd.DataFrame({"timestamp": ts, "open": one, "high": one, "low": one, "close": one, "volume": one})


def feature_names(spec: Mapping) -> list[str]:
    """Column names (without `timestamp`) that `build_features` gives for `spec`, from a two-bar dummy
    series."""
    return list(build_features(_synthetic_bars(), spec).columns[1:])


def feature_count(spec: Mapping) -> int:
    """Number of own feature columns for `spec` (no data read; a fraction of a second)."""
    return len(feature_names(spec))
