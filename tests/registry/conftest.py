"""A small real registry: LightGBM models trained on a slice of data/raw/BTCUSDT_1h.parquet with a few simple
features, written as production folders exactly as the workflow will (docs/REGISTRY.md)."""

from __future__ import annotations

import itertools
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from workflow_scripts import artifacts, registry
from workflow_scripts.vin import encode_vin, vin_suffix

SYMBOL = "BTCUSDT"
ROWS = 2400
TRAIN = 1600
HORIZON = 5
SIMPLE_SPEC = {"windows": [4, 24]}


def simple_features(bars: pd.DataFrame) -> pd.DataFrame:
    """Causal features (value at t from bars <= t; rolling windows of at most 24 bars)."""
    c = bars["close"].astype(float)
    out = pd.DataFrame({"timestamp": bars["timestamp"].to_numpy()})
    out["f__ret1"] = np.log(c).diff()
    out["f__ret4"] = np.log(c).diff(4)
    out["f__vol24"] = out["f__ret1"].rolling(24).std()
    out["f__range"] = (bars["high"] - bars["low"]) / c
    out["f__volz"] = (bars["volume"] - bars["volume"].rolling(24).mean()) / bars["volume"].rolling(24).std()
    for col in out.columns[1:]:
        out[col] = out[col].astype(np.float32)
    return out


def simple_builder(bars_by_symbol, symbol):
    """A FeatureBuilder for tests: own features only."""
    return simple_features(bars_by_symbol[symbol])


def labels_for(bars: pd.DataFrame) -> np.ndarray:
    """0 neither, 1 up-move, 2 down-move over HORIZON bars; -3 where the horizon runs past the data."""
    c = bars["close"].to_numpy(float)
    fwd = np.full(len(c), np.nan)
    fwd[:-HORIZON] = c[HORIZON:] / c[:-HORIZON] - 1
    q = np.nanquantile(np.abs(fwd), 0.6)
    y = np.where(fwd > q, 1, np.where(fwd < -q, 2, 0)).astype(np.int64)
    y[np.isnan(fwd)] = -3
    return y


class Factory:
    """Trains small boosters once and writes production folders on demand."""

    def __init__(self, bars: pd.DataFrame, root: Path):
        self.bars = bars
        self.features = simple_features(bars)
        self.labels = labels_for(bars)
        self.root = root
        self._n = itertools.count()
        self._models: dict = {}

    def model_text(self, num_leaves: int = 7, rounds: int = 20, columns: tuple[str, ...] | None = None) -> str:
        key = (num_leaves, rounds, columns)
        if key not in self._models:
            cols = list(columns or [c for c in self.features.columns if c != "timestamp"])
            ok = np.flatnonzero(self.labels[:TRAIN] >= 0)
            ds = lgb.Dataset(self.features[cols].iloc[ok].to_numpy(np.float32), label=self.labels[ok],
                             feature_name=cols, params={"verbosity": -1})
            params = {"objective": "multiclass", "num_class": 3, "num_leaves": num_leaves, "learning_rate": 0.1,
                      "verbosity": -1, "num_threads": 1, "seed": 1, "deterministic": True}
            self._models[key] = lgb.train(params, ds, num_boost_round=rounds).model_to_string()
        return self._models[key]

    def folder(self, *, side: str = "high", window: int = 5, kind: str = "breakout", num_leaves: int = 7,
               rounds: int = 20, columns: tuple[str, ...] | None = None, score: float | None = 0.5,
               gate_passed: bool = True, grade: str = "A", data_version: str = "d" * 64,
               symbol: str = SYMBOL, spec: dict | None = None, universe: list[str] | None = None) -> Path:
        n = next(self._n)
        text = self.model_text(num_leaves, rounds, columns)
        cols = list(columns or [c for c in self.features.columns if c != "timestamp"])
        target = f"{side}_{kind}_k1.5_th0.5"
        vin = encode_vin({"type": "LGBM", "grade": grade, "arch": {"num_leaves": num_leaves},
                          "opt": {"learning_rate": 0.1, "num_iterations": rounds},
                          "env": {"side": side, "kind": kind, "k": 1.5, "theta": 0.5, "window": window},
                          "date": "20250101", "suffix": vin_suffix({"n": n, "symbol": symbol, "target": target})})
        folder = self.root / f"prod{n}" / symbol / f"w{window}" / side
        folder.mkdir(parents=True)
        (folder / "model.txt").write_text(text)
        artifacts.write_json(folder / "config.json", {
            "symbol": symbol, "window": window, "side": side, "target": target, "model_type": "lightgbm",
            "params": {"num_leaves": num_leaves, "learning_rate": 0.1, "num_iterations": rounds},
            "dependencies": {"data_version": data_version, "encoder_version": None}})
        artifacts.write_json(folder / "metrics.json", {
            "vin": vin, "score": score, "grade": {"grade": grade, "method": "absolute"},
            "gate": {"profile": "exploratory", "passed": gate_passed, "reasons": []},
            "test": {"macro_ap": score}})
        artifacts.write_json(folder / "costs.json", {"fee_bps": 10.0, "spread_bps": 2.0, "slippage_bps": 1.0})
        feats = {"features": cols, "spec": spec or SIMPLE_SPEC, "universe": universe or [symbol],
                 "history_bars": 60}
        artifacts.write_json(folder / "features.json", feats)
        artifacts.write_json(folder / "split_indices.json", {"train": [0, TRAIN], "test": [TRAIN, ROWS]})
        artifacts.write_json(folder / "training_log.json", {"best_iteration": rounds, "fit_seconds": 0.1})
        registry.write_sha256(folder)
        return folder


@pytest.fixture(scope="session")
def bars(btc_bars) -> pd.DataFrame:
    return btc_bars.iloc[-ROWS:].reset_index(drop=True)


@pytest.fixture(scope="session")
def factory(bars, tmp_path_factory) -> Factory:
    return Factory(bars, tmp_path_factory.mktemp("production"))


@pytest.fixture
def reg_dir(tmp_path) -> Path:
    return tmp_path / "registry"


@pytest.fixture
def scoring(factory):
    """Common recent scoring data: the bars after the training rows."""
    frame = factory.features.iloc[TRAIN:].reset_index(drop=True)
    return frame, factory.labels[TRAIN:]
