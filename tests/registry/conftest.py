"""A small real registry: LightGBM models trained on a slice of data/raw/BTCUSDT_1h.parquet with a few simple
features, written as production folders exactly as the workflow will (docs/REGISTRY.md)."""

from __future__ import annotations

import itertools
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from workflow_scripts import artifacts
from workflow_scripts.evaluation.evidence import EVIDENCE_FILE
from workflow_scripts.evaluation.vin import encode_vin, vin_suffix
from workflow_scripts.models.folder import write_sha256

SYMBOL = "BTCUSDT"
ROWS = 2400
TRAIN = 1600
HORIZON = 5
SIMPLE_SPEC = {"windows": [4, 24]}
OTHER = "ETHUSDT"
# The training code path (workflow_scripts.features) with short lookbacks: fast, and exercises the cross-coin
# join.
REAL_SPEC = {
    "families": ["candle", "tech", "time", "struct", "vol"],
    "lookbacks": [3, 5, 8],
    "lags": [1],
    "dtype": "float32",
}
# Own feature columns whose value depends on where the data starts, not only on trailing bars: none since the
# continuity features are capped (features/temporal.py CONTINUITY_CAP), so live features equal batch features.
HISTORY_DEPENDENT = ()


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

    def __init__(self, bars: pd.DataFrame, root: Path, other_bars: pd.DataFrame):
        self.bars = bars
        self.bars_by_symbol = {SYMBOL: bars, OTHER: other_bars}
        self.features = simple_features(bars)
        self._real: pd.DataFrame | None = None
        self.labels = labels_for(bars)
        self.root = root
        self._n = itertools.count()
        self._models: dict = {}

    @property
    def real_features(self) -> pd.DataFrame:
        """The cross-coin table of the workflow's own feature code (BTCUSDT + ETHUSDT), built once."""
        if self._real is None:
            from workflow_scripts.registry.predictions import workflow_feature_builder

            self._real = workflow_feature_builder(REAL_SPEC, [SYMBOL, OTHER])(self.bars_by_symbol, SYMBOL)
        return self._real

    def real_columns(self) -> tuple[str, ...]:
        cols = [c for c in self.real_features.columns if c != "timestamp"]
        own = [c for c in cols if not c.startswith(OTHER) and c not in HISTORY_DEPENDENT]
        other = [c for c in cols if c.startswith(OTHER) and c.split("__", 1)[1] not in HISTORY_DEPENDENT]
        return tuple(own[:: max(1, len(own) // 12)] + other[:3])

    def model_text(
        self,
        num_leaves: int = 7,
        rounds: int = 20,
        columns: tuple[str, ...] | None = None,
        real: bool = False,
    ) -> str:
        key = (num_leaves, rounds, columns, real)
        if key not in self._models:
            table = self.real_features if real else self.features
            cols = list(columns or [c for c in table.columns if c != "timestamp"])
            ok = np.flatnonzero(self.labels[:TRAIN] >= 0)
            ds = lgb.Dataset(
                table[cols].iloc[ok].to_numpy(np.float32),
                label=self.labels[ok],
                feature_name=cols,
                params={"verbosity": -1},
            )
            params = {
                "objective": "multiclass",
                "num_class": 3,
                "num_leaves": num_leaves,
                "learning_rate": 0.1,
                "verbosity": -1,
                "num_threads": 1,
                "seed": 1,
                "deterministic": True,
            }
            self._models[key] = lgb.train(params, ds, num_boost_round=rounds).model_to_string()
        return self._models[key]

    def folder(
        self,
        *,
        side: str = "high",
        window: int = 5,
        kind: str = "breakout",
        num_leaves: int = 7,
        rounds: int = 20,
        columns: tuple[str, ...] | None = None,
        score: float | None = 0.5,
        gate_passed: bool = True,
        grade: str = "A",
        data_version: str = "d" * 64,
        symbol: str = SYMBOL,
        real: bool = False,
        validation: float | None | str = "score",
    ) -> Path:
        """A production folder; real=True: a model on the workflow's own features (features.json carries the
        spec and universe so live predictions rebuild them). `validation`: the annualised Sharpe of its
        validation evidence (default: the same number as the test `score`; None: no evidence file)."""
        n = next(self._n)
        if real:
            columns = columns or self.real_columns()
        text = self.model_text(num_leaves, rounds, columns, real)
        cols = list(columns or [c for c in self.features.columns if c != "timestamp"])
        target = f"{side}_{kind}_k1.5_th0.5"
        vin = encode_vin(
            {
                "type": "LGBM",
                "grade": grade,
                "arch": {"num_leaves": num_leaves},
                "opt": {"learning_rate": 0.1, "num_iterations": rounds},
                "env": {"side": side, "kind": kind, "k": 1.5, "theta": 0.5, "window": window},
                "date": "20250101",
                "suffix": vin_suffix({"n": n, "symbol": symbol, "target": target}),
            }
        )
        folder = self.root / f"prod{n}" / symbol / f"w{window}" / side
        folder.mkdir(parents=True)
        (folder / "model.txt").write_text(text)
        artifacts.write_json(
            folder / "config.json",
            {
                "symbol": symbol,
                "window": window,
                "side": side,
                "target": target,
                "model_type": "lightgbm",
                "params": {"num_leaves": num_leaves, "learning_rate": 0.1, "num_iterations": rounds},
                "dependencies": {"data_version": data_version, "encoder_version": None},
            },
        )
        artifacts.write_json(
            folder / "metrics.json",
            {
                "vin": vin,
                "score": score,
                "grade": {"grade": grade, "method": "absolute"},
                "gate": {"profile": "exploratory", "passed": gate_passed, "reasons": []},
                "test": {"macro_ap": score},
            },
        )
        artifacts.write_json(folder / "costs.json", {"fee_bps": 10.0, "spread_bps": 2.0, "slippage_bps": 1.0})
        feats = (
            {"features": cols, "spec": REAL_SPEC, "universe": [SYMBOL, OTHER]}
            if real
            else {"features": cols, "spec": SIMPLE_SPEC, "universe": [symbol], "history_bars": 60}
        )
        artifacts.write_json(folder / "features.json", feats)
        artifacts.write_json(folder / "split_indices.json", {"train": [0, TRAIN], "test": [TRAIN, ROWS]})
        artifacts.write_json(folder / "training_log.json", {"best_iteration": rounds, "fit_seconds": 0.1})
        sharpe = score if validation == "score" else validation
        if sharpe is not None:
            artifacts.write_json(
                folder / EVIDENCE_FILE,
                evidence_document(sharpe, {"profile": "exploratory", "passed": gate_passed}),
            )
        write_sha256(folder)
        return folder


def evidence_document(
    sharpe: float, gate: dict, bars: int = 600, start_s: int = 1_735_689_600, seed: str = ""
) -> dict:
    """A validation evidence document (evaluation/evidence.py's shape) whose per-bar returns have exactly
    the annualised Sharpe `sharpe`: a zero-mean unit-variance pattern (from `seed`) * 1 % plus the matching
    mean."""
    z = np.random.default_rng(list(seed.encode()) or 0).standard_normal(bars)
    z = (z - z.mean()) / z.std(ddof=1)
    returns = 0.01 * z + sharpe * 0.01 / np.sqrt(8760)
    ts = start_s + 3600 * np.arange(bars)
    return {
        "segment": "validation",
        "timestamps_s": ts.tolist(),
        "returns": returns.tolist(),
        "trades": [[int(ts[i]), int(ts[i + 4])] for i in range(0, bars - 5, 10)],
        "bars_per_year": 8760,
        "in_sample_fit": False,
        "gate": gate,
    }


@pytest.fixture(scope="session")
def bars(btc_bars) -> pd.DataFrame:
    return btc_bars.iloc[-ROWS:].reset_index(drop=True)


@pytest.fixture(scope="session")
def factory(bars, tmp_path_factory) -> Factory:
    other = pd.read_parquet(Path(__file__).resolve().parents[2] / "data" / "raw" / f"{OTHER}_1h.parquet")
    other = other[
        (other["timestamp"] >= bars["timestamp"].iloc[0]) & (other["timestamp"] <= bars["timestamp"].iloc[-1])
    ].reset_index(drop=True)
    return Factory(bars, tmp_path_factory.mktemp("production"), other)


@pytest.fixture
def reg_dir(tmp_path) -> Path:
    return tmp_path / "registry"


@pytest.fixture
def scoring(factory):
    """Common recent scoring data: the bars after the training rows."""
    frame = factory.features.iloc[TRAIN:].reset_index(drop=True)
    return frame, factory.labels[TRAIN:]


# ---- a workflow-like run: results/ files from the workflow's own code, production folders from heads -------
WF_SYMBOLS = (SYMBOL, OTHER)
WF_BARS = 3000
WF_TARGETS = {
    "windows": [5, 20],
    "types": ["high_breakout", "high_reversion", "low_breakout", "low_reversion"],
    "std_thresholds": [1.0],
    "barrier_thresholds": [0.5, 1.0],
    "horizon_multiplier": 1,
    "sigma_min_bars": 24,
}
WF_SPEC = {
    "name": "default",
    "compare": {"alpha": 0.05, "min_bars": 300, "min_trades": 20},
    "demotion": {"min_bars": 300, "min_trades": 10, "sharpe_floor": 0.0},
    "promote_gate_profiles": ["strict"],
}


class WorkflowLike:
    """What the workflow leaves before register_models, on real bars: results/features/{S}.parquet (the
    cross-coin table of workflow_scripts.features), results/targets/{S}/w{w}.parquet (swing_targets),
    results/splits/{S}/w{w}.json (splits), and production folders as rule evaluate_production writes them
    (heads.train_head + save_head on the training segment, early stopping on validation, the test segment
    scored, then the docs/REGISTRY.md files)."""

    def __init__(self, root: Path, bars_by_symbol: dict[str, pd.DataFrame]):
        from workflow_scripts.data.splits import chronological_split
        from workflow_scripts.features import add_cross_coin, build_features
        from workflow_scripts.targets import swing_targets
        from workflow_scripts.targets.grammar import target_grid

        self.root = root
        self.results = root / "results"
        self.grid = target_grid(WF_TARGETS)
        own = {s: build_features(bars, REAL_SPEC) for s, bars in bars_by_symbol.items()}
        for s, bars in bars_by_symbol.items():
            table = add_cross_coin(own[s], {o: f for o, f in own.items() if o != s})
            artifacts.write_parquet(self.results / "features" / f"{s}.parquet", table)
            for w in WF_TARGETS["windows"]:
                table = swing_targets.build_targets(bars, w, self.grid, w, WF_TARGETS["sigma_min_bars"])
                artifacts.write_parquet(self.results / "targets" / s / f"w{w}.parquet", table)
                artifacts.write_json(
                    self.results / "splits" / s / f"w{w}.json",
                    chronological_split(bars["timestamp"], w, 0.6, 0.2, 24),
                )
        self._n = itertools.count()

    def paths(self, symbols=WF_SYMBOLS) -> dict:
        from workflow_scripts.registry.runs import symbol_data_from_paths

        w = WF_TARGETS["windows"]
        return symbol_data_from_paths(
            [self.results / "features" / f"{s}.parquet" for s in symbols],
            [self.results / "targets" / s / f"w{x}.parquet" for s in symbols for x in w],
            [self.results / "splits" / s / f"w{x}.json" for s in symbols for x in w],
        )

    def production(
        self,
        symbol: str,
        window: int,
        side: str,
        *,
        kind: str = "breakout",
        theta: float = 0.5,
        num_leaves: int = 7,
        rounds: int = 60,
        n_features: int = 24,
        gate_passed: bool = True,
        profile: str = "strict",
        grade: str = "A",
        tag: str = "run1",
        model: str = "lightgbm",
        validation_sharpe: float | None = 1.0,
        test_score: float | None = None,
    ) -> Path:
        from workflow_scripts.data.splits import segment_mask
        from workflow_scripts.evaluation.metrics import macro_average_precision
        from workflow_scripts.models import heads

        target = f"{side}_{kind}_k1.0_th{theta}"
        feats = pd.read_parquet(self.results / "features" / f"{symbol}.parquet")
        columns = [c for c in feats.columns if c != "timestamp"][::7][:n_features]
        table = pd.read_parquet(self.results / "targets" / symbol / f"w{window}.parquet")
        split = artifacts.read_json(self.results / "splits" / symbol / f"w{window}.json")
        y, pos = table[target].to_numpy(), np.arange(len(table))
        rows = {
            seg: np.flatnonzero(segment_mask(split, seg, pos, table["label_end"].to_numpy()) & (y >= 0))
            for seg in ("train", "validation", "test")
        }
        params = {"num_leaves": num_leaves, "learning_rate": 0.1, "min_child_samples": 10}
        head = heads.train_head(
            model,
            feats[columns].iloc[rows["train"]],
            y[rows["train"]],
            feats[columns].iloc[rows["validation"]],
            y[rows["validation"]],
            params,
            seed=1,
            num_boost_round=rounds,
            early_stopping_rounds=10,
        )
        score = macro_average_precision(
            y[rows["test"]], heads.predict_proba(head, feats[columns].iloc[rows["test"]])
        )
        score = score if test_score is None else test_score
        n = next(self._n)
        folder = self.root / "production" / tag / symbol / f"w{window}" / side
        heads.save_head(folder, head)
        vin = encode_vin(
            {
                "type": "LGBM" if model == "lightgbm" else "XGB",
                "grade": grade,
                "arch": {"num_leaves": num_leaves},
                "opt": {"learning_rate": 0.1, "num_iterations": rounds},
                "env": {"side": side, "kind": kind, "k": 1.0, "theta": theta, "window": window},
                "date": "20260516",
                "suffix": vin_suffix({"n": n, "tag": tag, "symbol": symbol}),
            }
        )
        artifacts.write_json(
            folder / "config.json",
            {
                "symbol": symbol,
                "window": window,
                "side": side,
                "target": target,
                "model_type": model,
                "params": head.params,
                "dependencies": {"data_version": "e" * 64, "encoder_version": None},
            },
        )
        artifacts.write_json(
            folder / "metrics.json",
            {
                "vin": vin,
                "score": score,
                "grade": {"grade": grade},
                "gate": {"profile": profile, "passed": gate_passed},
            },
        )
        artifacts.write_json(folder / "costs.json", {"fee_bps": 10.0, "spread_bps": 2.0, "slippage_bps": 1.0})
        artifacts.write_json(
            folder / "features.json", {"features": columns, "spec": REAL_SPEC, "universe": list(WF_SYMBOLS)}
        )
        artifacts.write_json(folder / "split_indices.json", {k: v.tolist() for k, v in rows.items()})
        artifacts.write_json(folder / "training_log.json", {"best_iteration": head.best_iteration})
        if validation_sharpe is not None:  # the validation evidence (synthetic returns, real bar times)
            lo, hi = split["validation"]["lo"], split["validation"]["hi"]
            secs = feats["timestamp"].iloc[lo:hi].astype("datetime64[s, UTC]").astype("int64").to_numpy()
            doc = evidence_document(
                validation_sharpe,
                {"profile": profile, "passed": gate_passed},
                bars=hi - lo,
                start_s=int(secs[0]),
                seed=f"{tag}/{symbol}/{window}/{side}/{num_leaves}/{rounds}",
            )
            doc["timestamps_s"] = secs.tolist()
            doc["trades"] = [[int(secs[i]), int(secs[i + 4])] for i in range(0, len(secs) - 5, 10)]
            artifacts.write_json(folder / EVIDENCE_FILE, doc)
        write_sha256(folder)
        return folder


def workflow_bars(n: int = WF_BARS) -> dict[str, pd.DataFrame]:
    """The last `n` real hourly bars of each WF_SYMBOLS coin (data/raw), same time range."""
    raw = Path(__file__).resolve().parents[2] / "data" / "raw"
    return {s: pd.read_parquet(raw / f"{s}_1h.parquet").iloc[-n:].reset_index(drop=True) for s in WF_SYMBOLS}


@pytest.fixture(scope="module")
def workflow_like(tmp_path_factory) -> WorkflowLike:
    return WorkflowLike(tmp_path_factory.mktemp("workflow_like"), workflow_bars())
