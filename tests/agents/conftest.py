"""Small synthetic markets for the agent tests: a random walk with a few features (fast, no files)."""

from __future__ import annotations

import numpy as np
import pytest

from workflow_scripts.agents.environment import EnvSettings, MarketData, TradingEnv, market_data
from workflow_scripts.evaluation.costs import Slippage, SymbolCosts

COSTS = SymbolCosts(
    "TESTUSDT",
    taker_fee_bps=10.0,
    maker_fee_bps=2.0,
    half_spread_bps=2.0,
    entry_order="taker",
    exit_order="maker",
    slippage=Slippage(base_bps=1.0, vol_coef=0.1, max_bps=50.0),
)


def random_market(n: int = 400, n_features: int = 4, seed: int = 0) -> MarketData:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    features = rng.normal(0.0, 1.0, (n, n_features)).astype(np.float32)
    features[:3, 0] = np.nan  # warm-up NaNs like real indicator columns
    return market_data(features, close, sigma_bars=24)


def make_env(data: MarketData | None = None, segment=(50, 350), **settings) -> TradingEnv:
    return TradingEnv(data or random_market(), segment, COSTS, EnvSettings(**settings))


@pytest.fixture
def market() -> MarketData:
    return random_market()
