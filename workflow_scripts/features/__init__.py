"""Per-coin feature tables from hourly bars, and the cross-coin table built from them.

`build_features(bars, spec)` turns one coin's bars (docs/CONTRACTS.md: `timestamp` + OHLCV, sorted, unique,
gaps kept) into `timestamp` + float32 columns `{family}__{name}`; `add_cross_coin(own, others)` appends the
other coins' columns as `{SYMBOL}__{family}__{name}`, aligned on timestamp.

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

import numpy as np
import pandas as pd

from . import candlestick, market_structure, technical, temporal, volatility
from ._core import Bars

FAMILIES = {
    "candle": candlestick,
    "tech": technical,
    "time": temporal,
    "struct": market_structure,
    "vol": volatility,
}
SPEC_KEYS = ("families", "lookbacks", "lags", "dtype")
DTYPES = ("float32",)
LOOKBACK_RANGE = (3, 2000)  # bars; at least 3 so a window has a spread, vol_ratio reads 4n bars
LAG_RANGE = (1, 1000)  # bars

BAR_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")

__all__ = [
    "FAMILIES",
    "add_cross_coin",
    "build_features",
    "feature_count",
    "feature_names",
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
    """Check a features spec (all of families, lookbacks, lags, dtype; nothing else) and return a
    normalised copy (lookbacks and lags sorted, families in canonical order). Raises ValueError naming the
    offending key."""
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"features spec must be a mapping with keys {list(SPEC_KEYS)}, got {type(spec).__name__}"
        )
    for key in SPEC_KEYS:
        if key not in spec:
            raise ValueError(f"features spec key '{key}' is missing; required keys: {list(SPEC_KEYS)}")
    for key in spec:
        if key not in SPEC_KEYS:
            raise ValueError(f"features spec key '{key}' is unknown; allowed keys: {list(SPEC_KEYS)}")
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
    return {
        "families": [f for f in FAMILIES if f in fams],
        "lookbacks": _int_list(spec, "lookbacks", *LOOKBACK_RANGE, allow_empty=False),
        "lags": _int_list(spec, "lags", *LAG_RANGE, allow_empty=True),
        "dtype": spec["dtype"],
    }


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


# -- cross-coin ----------------------------------------------------------------------------------------------
def _ts_ns(frame: pd.DataFrame, what: str) -> np.ndarray:
    if "timestamp" not in frame.columns:
        raise ValueError(f"{what} has no 'timestamp' column")
    ts = frame["timestamp"]
    if not pd.api.types.is_datetime64_any_dtype(ts):
        raise ValueError(f"{what} 'timestamp' must be datetime64, got {ts.dtype}")
    if not ts.is_unique:
        raise ValueError(f"{what} has duplicate timestamps")
    return ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def add_cross_coin(own: pd.DataFrame, others: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """`own` (this coin's feature table) plus every other coin's feature columns as `{SYMBOL}__{column}`,
    in sorted symbol order, left-joined on own's timestamps: NaN where the other coin has no bar at that
    timestamp (before its listing, in its gaps). The other coin's value at t is its own feature at t, so
    still known at t. float32; inputs are not modified."""
    own_ns = _ts_ns(own, "own feature table")
    own_cols = [c for c in own.columns if c != "timestamp"]
    plan: list[tuple[str, str, str]] = []  # (symbol, source column, new name)
    for sym in sorted(others):
        if not isinstance(sym, str) or not SYMBOL_RE.match(sym):
            raise ValueError(f"cross-coin symbol {sym!r} must match {SYMBOL_RE.pattern}")
        plan += [(sym, c, f"{sym}__{c}") for c in others[sym].columns if c != "timestamp"]
    names = own_cols + [new for _, _, new in plan]
    if len(set(names)) != len(names):
        raise ValueError("cross-coin column names collide (is `own` already a cross-coin table?)")

    mat = np.empty((len(own), len(names)), dtype=np.float32, order="F")
    for j, c in enumerate(own_cols):
        mat[:, j] = own[c].to_numpy(dtype=np.float32, na_value=np.nan)
        mat[~np.isfinite(mat[:, j]), j] = np.nan
    j = len(own_cols)
    own_index = pd.Index(own_ns)
    for sym in sorted(others):
        other = others[sym]
        idx = pd.Index(_ts_ns(other, f"{sym} feature table")).get_indexer(own_index)
        absent = idx < 0
        take = np.where(absent, 0, idx)
        for c in other.columns:
            if c == "timestamp":
                continue
            col = other[c].to_numpy(dtype=np.float32, na_value=np.nan)
            dst = mat[:, j]
            if len(col):
                dst[:] = col[take]
                dst[absent | ~np.isfinite(dst)] = np.nan
            else:
                dst[:] = np.nan
            j += 1
    out = pd.DataFrame(mat, columns=names, copy=False)
    out.insert(0, "timestamp", own["timestamp"].array)
    return out
