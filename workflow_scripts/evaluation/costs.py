"""Per-symbol trading costs: a provider interface, the config-table provider, the snapshot and the slippage
model.

Units: every cost is in basis points (1 bp = 0.0001 = 0.01 %) of the traded notional, charged once per side
(entry and exit each pay fee + half-spread + slippage). Volatility `sigma` is the per-bar standard deviation
of log returns known at the entry bar t (the same sigma the swing targets scale their barriers with).

Slippage model ("volatility", documented in docs/EVALUATION.md):

    slippage_bps = min(max_bps, base_bps + vol_coef * sigma * 1e4)

i.e. a fixed floor plus a fraction of one bar's standard deviation, capped. `vol_coef = 0` gives a fixed
slippage. Trade size is not modelled: positions are small next to the hourly volume of the coins we trade.

Where costs come from is hidden behind `CostProvider`: `ConfigCostProvider` reads the table in
config/costs/*.yaml (one `default` entry plus per-symbol overrides). A live source (for example ccxt's
`fetch_trading_fee` and an order-book half spread) only has to implement `costs_for(symbol)`. Evaluation never
asks a provider directly: the workflow writes one snapshot per symbol (`cost_snapshot`) and evaluation reads
that file, so changing one symbol's costs reruns only that symbol's evaluations.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

SNAPSHOT_VERSION = 1
ORDER_TYPES = ("taker", "maker")
SLIPPAGE_MODELS = ("volatility",)


class CostError(ValueError):
    """A cost table problem, naming the symbol or key and what is allowed."""


@dataclass(frozen=True)
class Slippage:
    model: str = "volatility"
    base_bps: float = 1.0
    vol_coef: float = 0.0
    max_bps: float = 50.0


@dataclass(frozen=True)
class SymbolCosts:
    """The costs one symbol's trades pay, all in bps of notional per side."""

    symbol: str
    taker_fee_bps: float
    maker_fee_bps: float
    half_spread_bps: float
    entry_order: str = "taker"
    exit_order: str = "taker"
    slippage: Slippage = field(default_factory=Slippage)
    source: str = "config"

    def fee_bps(self, order: str) -> float:
        return self.taker_fee_bps if order == "taker" else self.maker_fee_bps


@runtime_checkable
class CostProvider(Protocol):
    """Anything that can say what trading `symbol` costs now."""

    def costs_for(self, symbol: str) -> SymbolCosts: ...


# ---- config table ------------------------------------------------------------------------------------------
_NUMERIC_KEYS = ("taker_fee_bps", "maker_fee_bps", "half_spread_bps")


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_number(where: str, key: str, value: Any, upper: float = 10_000.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CostError(f"{where}: '{key}' must be a finite number of bps, got {value!r}")
    if not 0 <= value <= upper:
        raise CostError(f"{where}: '{key}' must be in [0, {upper}] bps, got {value!r}")
    return float(value)


def costs_from_mapping(symbol: str, entry: Mapping[str, Any], source: str = "config") -> SymbolCosts:
    """Validate one merged table entry and turn it into SymbolCosts (errors name the symbol and the key)."""
    where = f"costs for {symbol}"
    known = set(_NUMERIC_KEYS) | {"entry_order", "exit_order", "slippage"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise CostError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(known)}")
    missing = [k for k in _NUMERIC_KEYS if k not in entry]
    if missing:
        raise CostError(f"{where}: missing key(s) {missing}")
    nums = {k: _check_number(where, k, entry[k]) for k in _NUMERIC_KEYS}
    orders = {}
    for key in ("entry_order", "exit_order"):
        value = entry.get(key, "taker")
        if value not in ORDER_TYPES:
            raise CostError(f"{where}: '{key}' must be one of {list(ORDER_TYPES)}, got {value!r}")
        orders[key] = value
    slip_in = dict(entry.get("slippage") or {})
    slip_unknown = sorted(set(slip_in) - {"model", "base_bps", "vol_coef", "max_bps"})
    if slip_unknown:
        raise CostError(f"{where}: unknown slippage key(s) {slip_unknown}")
    model = slip_in.get("model", "volatility")
    if model not in SLIPPAGE_MODELS:
        raise CostError(f"{where}: slippage.model must be one of {list(SLIPPAGE_MODELS)}, got {model!r}")
    slippage = Slippage(
        model=model,
        base_bps=_check_number(where, "slippage.base_bps", slip_in.get("base_bps", 0.0)),
        vol_coef=_check_number(where, "slippage.vol_coef", slip_in.get("vol_coef", 0.0), upper=100.0),
        max_bps=_check_number(where, "slippage.max_bps", slip_in.get("max_bps", 50.0)),
    )
    return SymbolCosts(symbol=symbol, slippage=slippage, source=source, **nums, **orders)


class ConfigCostProvider:
    """Costs from the config table: `{"default": {...}, "symbols": {"BTCUSDT": {...partial override}}}`.

    A symbol's entry is the default deep-merged with its override. Without a default, every symbol must be
    listed; asking for an unlisted one raises CostError naming it.
    """

    def __init__(self, table: Mapping[str, Any]):
        unknown = sorted(set(table) - {"name", "source", "default", "symbols"})
        if unknown:
            raise CostError(f"cost table: unknown key(s) {unknown}; allowed: default, symbols, name, source")
        self._default = table.get("default")
        self._symbols = dict(table.get("symbols") or {})
        self._source = str(table.get("source") or f"config:{table.get('name', 'costs')}")
        # Fail at start-up on a bad entry, not at the first symbol that happens to use it.
        if self._default is not None:
            costs_from_mapping("default", self._default, self._source)
        for sym in self._symbols:
            self.costs_for(sym)

    def costs_for(self, symbol: str) -> SymbolCosts:
        override = self._symbols.get(symbol)
        if override is None and self._default is None:
            raise CostError(
                f"no costs for symbol {symbol!r}: it has no entry under 'symbols' and the cost table has no "
                f"'default' (listed: {sorted(self._symbols)})"
            )
        entry = _merge(self._default or {}, override or {})
        return costs_from_mapping(symbol, entry, self._source)


# ---- snapshot ----------------------------------------------------------------------------------------------
def cost_snapshot(provider: CostProvider, symbol: str) -> dict:
    """The plain-JSON record of the costs one symbol's evaluations use (written per symbol, an input of
    them)."""
    return snapshot_of(provider.costs_for(symbol))


def snapshot_of(costs: SymbolCosts) -> dict:
    return asdict(costs) | {"version": SNAPSHOT_VERSION, "units": "bps of notional per side"}


def costs_from_snapshot(snapshot: Mapping[str, Any]) -> SymbolCosts:
    if snapshot.get("version") != SNAPSHOT_VERSION:
        raise CostError(f"cost snapshot version {snapshot.get('version')!r} is not {SNAPSHOT_VERSION}")
    entry = {
        k: snapshot[k] for k in (*_NUMERIC_KEYS, "entry_order", "exit_order", "slippage") if k in snapshot
    }
    return costs_from_mapping(snapshot["symbol"], entry, snapshot.get("source", "snapshot"))


def zero_costs(symbol: str = "ZERO") -> SymbolCosts:
    return SymbolCosts(symbol, 0.0, 0.0, 0.0, slippage=Slippage(base_bps=0.0, vol_coef=0.0), source="zero")


# ---- per-trade cost ----------------------------------------------------------------------------------------
def slippage_bps(costs: SymbolCosts, sigma: np.ndarray | float | None) -> np.ndarray:
    """Slippage per side in bps for each trade; `sigma` is the per-bar log-return std known at entry."""
    s = costs.slippage
    sig = np.zeros(1) if sigma is None else np.asarray(sigma, dtype=float)
    sig = np.where(np.isfinite(sig), sig, 0.0)
    return np.minimum(s.max_bps, s.base_bps + s.vol_coef * sig * 1e4)


def side_costs_bps(costs: SymbolCosts, sigma: np.ndarray | float | None) -> tuple[np.ndarray, np.ndarray]:
    """(entry, exit) cost per trade in bps: fee of the order type + half spread + slippage."""
    slip = slippage_bps(costs, sigma)
    entry = costs.fee_bps(costs.entry_order) + costs.half_spread_bps + slip
    exit_ = costs.fee_bps(costs.exit_order) + costs.half_spread_bps + slip
    return entry, exit_


def round_trip_bps(costs: SymbolCosts, sigma: np.ndarray | float | None = None) -> np.ndarray:
    entry, exit_ = side_costs_bps(costs, sigma)
    return entry + exit_
