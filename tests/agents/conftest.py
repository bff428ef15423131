"""Small synthetic markets for the agent tests: a random walk with a few features (fast, no files). The
agents' settings come from config/agents/ppo.yaml (the one home of their values) through `config_group`."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from workflow_scripts import artifacts
from workflow_scripts.agents.agents import AgentParams
from workflow_scripts.agents.cnn_lstm import CnnLstmConfig
from workflow_scripts.agents.environment import EnvSettings, MarketData, TradingEnv, market_data
from workflow_scripts.config.schema import config_group
from workflow_scripts.evaluation.costs import Slippage, SymbolCosts
from workflow_scripts.models.folder import write_sha256

AGENTS = config_group("agents", "ppo")

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


def settings(**over) -> EnvSettings:
    """The config's env settings, one episode = the whole segment unless `episode_bars` is given."""
    return EnvSettings.from_mapping(AGENTS["env"] | {"episode_bars": None} | over)


def agent_params(**over) -> AgentParams:
    return AgentParams.from_mapping(AGENTS["agent"] | {"kind": "ppo"} | over)


def cnn_config(**over) -> CnnLstmConfig:
    return CnnLstmConfig.from_mapping(AGENTS["cnn_lstm"] | over)


def make_env(data: MarketData | None = None, segment=(50, 350), **over) -> TradingEnv:
    return TradingEnv(data or random_market(), segment, COSTS, settings(**over))


@pytest.fixture
def market() -> MarketData:
    return random_market()


def production_folder(folder, side: str, features, labels, train_rows, symbol: str = "TESTUSDT"):
    """A minimal LightGBM production folder (models/folder.py contract) for the hybrid: a 3-class model on the
    feature columns of `features` (timestamp + columns) fitted on `train_rows`."""
    columns = [c for c in features.columns if c != "timestamp"]
    params = {"objective": "multiclass", "num_class": 3, "num_leaves": 4, "verbosity": -1, "seed": 1}
    data = lgb.Dataset(features[columns].iloc[train_rows].to_numpy(np.float32), label=labels[train_rows])
    booster = lgb.train(params | {"num_threads": 1, "deterministic": True}, data, num_boost_round=5)
    folder.mkdir(parents=True)
    (folder / "model.txt").write_text(booster.model_to_string())
    target = f"{side}_breakout_k1.5_th0.5"
    config = {"symbol": symbol, "window": 5, "side": side, "target": target, "model_type": "lightgbm"}
    artifacts.write_json(folder / "config.json", config)
    artifacts.write_json(folder / "metrics.json", {"vin": f"LGBM-TEST-{side.upper()}"})
    artifacts.write_json(folder / "costs.json", {})
    artifacts.write_json(folder / "features.json", {"features": columns})
    artifacts.write_json(folder / "split_indices.json", {"train": [int(r) for r in train_rows]})
    artifacts.write_json(folder / "training_log.json", {})
    write_sha256(folder)
    return folder
