"""Champion predictions: batch over the whole history, and live appends of the bars newer than the last
prediction.

One parquet per symbol, `predictions/<SYMBOL>.parquet`, columns (PRED_COLUMNS):
    timestamp (datetime64[ns, UTC], bar open time; the prediction uses bars <= timestamp only)
    vin (str, the champion that predicted), side ('high' / 'low'),
    p_neither, p_breakout, p_reversion (float64, sum to 1)
sorted by (timestamp, side), unique on (timestamp, side).

Live appends compute features with the same code as training (workflow_scripts.features.build_features on each
coin's trailing history, then add_cross_coin), on `history_bars` bars before the first new bar: enough for
every rolling window of the feature spec, so the new rows equal what a batch run over the full history
computes (tests/registry/test_predictions.py proves it). Appending is idempotent (rows already present for a
side are never recomputed) and atomic (the file is replaced whole, under a file lock).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from filelock import FileLock

from workflow_scripts import artifacts
from workflow_scripts.features import add_cross_coin, build_features
from workflow_scripts.features.temporal import CONTINUITY_CAP
from workflow_scripts.models.folder import input_columns
from workflow_scripts.registry import store as reg

PRED_COLUMNS = ["timestamp", "vin", "side", "p_neither", "p_breakout", "p_reversion"]
DEFAULT_HISTORY_BARS = 1000

# builder(bars_by_symbol, symbol) -> the symbol's cross-coin feature table (timestamp + feature columns)
FeatureBuilder = Callable[[Mapping[str, pd.DataFrame], str], pd.DataFrame]


def workflow_feature_builder(spec: Mapping, universe: Sequence[str]) -> FeatureBuilder:
    """The training code path: build_features(bars, spec) per coin, then add_cross_coin(own, others)."""

    def build(bars_by_symbol: Mapping[str, pd.DataFrame], symbol: str) -> pd.DataFrame:
        own = build_features(bars_by_symbol[symbol], dict(spec))
        others = {
            s: build_features(bars_by_symbol[s], dict(spec))
            for s in universe
            if s != symbol and s in bars_by_symbol
        }
        return add_cross_coin(own, others)

    return build


def empty_predictions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            "vin": pd.Series([], dtype=object),
            "side": pd.Series([], dtype=object),
            **{c: pd.Series([], dtype="float64") for c in PRED_COLUMNS[3:]},
        }
    )


def predict_frame(model: reg.LoadedModel, features: pd.DataFrame) -> pd.DataFrame:
    """One model over a feature table -> prediction rows (PRED_COLUMNS)."""
    proba = model.predict_proba(features)
    ts = pd.to_datetime(features["timestamp"], utc=True).astype("datetime64[ns, UTC]")
    return pd.DataFrame(
        {
            "timestamp": ts.to_numpy(),
            "vin": model.vin,
            "side": model.entry["side"],
            "p_neither": proba[:, 0],
            "p_breakout": proba[:, 1],
            "p_reversion": proba[:, 2],
        }
    )


def champion_models(registry_dir, symbol: str) -> list[reg.LoadedModel]:
    """The verified champion of each side of `symbol` (side order), its deployed model: the refit on every
    usable bar when the folder has one (models/folder.py REFIT_DIR), else the evaluated model."""
    champs = reg.read_champions(registry_dir, symbol)
    vins = [slot["champion"] for _, slot in sorted(champs["sides"].items()) if slot.get("champion")]
    if not vins:
        raise reg.RegistryError(f"{symbol} has no champion: nothing to predict with")
    return [reg.load_model(registry_dir, v, model="deployed") for v in vins]


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    df = df[PRED_COLUMNS].copy()
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True).astype("datetime64[ns, UTC]")
    df = df.drop_duplicates(["timestamp", "side"], keep="first")
    return df.sort_values(["timestamp", "side"], kind="stable").reset_index(drop=True)


def batch_predictions(
    registry_dir, symbol: str, features: pd.DataFrame, models: Sequence[reg.LoadedModel] | None = None
) -> pd.DataFrame:
    """Every champion of `symbol` (or the given verified `models`) over the whole feature table."""
    models = champion_models(registry_dir, symbol) if models is None else models
    return _normalise(pd.concat([predict_frame(m, features) for m in models], ignore_index=True))


def batch_from_file(registry_dir, symbol: str, features_path: str | os.PathLike) -> pd.DataFrame:
    """Batch predictions over a feature table file (rule predict_batch), reading only the columns the
    champions use. A symbol without a champion gets an empty table: no model passing the gates is a result,
    not an error."""
    if not any(slot.get("champion") for slot in reg.read_champions(registry_dir, symbol)["sides"].values()):
        return empty_predictions()
    models = champion_models(registry_dir, symbol)
    available = set(pq.read_schema(features_path).names)
    columns = input_columns(models, available)
    features = pd.read_parquet(features_path, columns=["timestamp", *columns])
    return batch_predictions(registry_dir, symbol, features, models)


def write_batch(
    registry_dir, symbol: str, features: pd.DataFrame, out_path: str | os.PathLike
) -> pd.DataFrame:
    preds = batch_predictions(registry_dir, symbol, features)
    with FileLock(str(out_path) + ".lock"):
        artifacts.write_parquet(out_path, preds)
    return preds


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        return empty_predictions()
    return _normalise(pd.read_parquet(path))


def history_bars_for(feature_info: Mapping) -> int:
    """Trailing bars needed so live features equal batch ones: features.json `history_bars` if given, else 20x
    the longest lookback plus the longest lag (EMA-type smoothers then forget their start to float32
    precision), at least DEFAULT_HISTORY_BARS. Never fewer than the continuity cap (features/temporal.py) when
    the spec builds the time family: `time__bars_since_gap` counts up to that many bars back."""
    spec = feature_info.get("spec") or {}
    floor = CONTINUITY_CAP if spec and "time" in spec.get("families", ["time"]) else 0
    if "history_bars" in feature_info:
        return max(int(feature_info["history_bars"]), floor)
    need = 20 * max(spec.get("lookbacks") or [0]) + max(spec.get("lags") or [0])
    return max(DEFAULT_HISTORY_BARS, int(need), floor)


def _history_bars(model: reg.LoadedModel, default: int | None) -> int:
    return int(default) if default is not None else history_bars_for(model.feature_info)


def _builder_for(model: reg.LoadedModel, symbol: str) -> FeatureBuilder:
    info = model.feature_info
    if "spec" not in info:
        raise reg.RegistryError(
            f"model {model.vin}: features.json has no 'spec' to rebuild features live; pass a feature builder"
        )
    return workflow_feature_builder(info["spec"], info.get("universe", [symbol]))


def incremental_features(
    bars_by_symbol: Mapping[str, pd.DataFrame],
    symbol: str,
    after: pd.Timestamp | None,
    history_bars: int,
    builder: FeatureBuilder,
) -> pd.DataFrame:
    """Feature rows of `symbol` for bars with timestamp > `after`, computed on `history_bars` trailing bars
    before the first new bar (every coin cut at the same time). Empty when there is no newer bar."""
    own = bars_by_symbol[symbol]
    ts = pd.to_datetime(own["timestamp"], utc=True)
    new_pos = np.flatnonzero((ts > after).to_numpy()) if after is not None else np.arange(len(own))
    if len(new_pos) == 0:
        return pd.DataFrame(columns=["timestamp"])
    start = max(0, int(new_pos[0]) - int(history_bars))
    t0 = ts.iloc[start]
    sliced = {
        s: b[pd.to_datetime(b["timestamp"], utc=True) >= t0].reset_index(drop=True)
        for s, b in bars_by_symbol.items()
    }
    feats = builder(sliced, symbol)
    fts = pd.to_datetime(feats["timestamp"], utc=True)
    keep = (fts > after) if after is not None else np.ones(len(feats), dtype=bool)
    return feats[np.asarray(keep)].reset_index(drop=True)


def append_predictions(
    registry_dir,
    symbol: str,
    bars_by_symbol: Mapping[str, pd.DataFrame],
    out_path: str | os.PathLike,
    *,
    history_bars: int | None = None,
    builder: FeatureBuilder | None = None,
) -> int:
    """Predict the bars newer than the last prediction of each champion side and append them; returns rows
    added.

    Running it again with the same bars adds nothing. `builder` defaults to the training code path described
    by the model's features.json (spec, universe)."""
    if symbol not in bars_by_symbol:
        raise reg.RegistryError(f"no bars for {symbol}")
    out_path = Path(out_path)
    with FileLock(str(out_path) + ".lock"):
        existing = read_predictions(out_path)
        new = []
        for model in champion_models(registry_dir, symbol):
            side = model.entry["side"]
            done = existing.loc[existing["side"] == side, "timestamp"]
            after = done.max() if len(done) else None
            b = builder or _builder_for(model, symbol)
            feats = incremental_features(bars_by_symbol, symbol, after, _history_bars(model, history_bars), b)
            if len(feats):
                new.append(predict_frame(model, feats))
        if not new:
            return 0
        combined = _normalise(pd.concat([existing, *new], ignore_index=True))
        added = len(combined) - len(existing)
        if added:
            artifacts.write_parquet(out_path, combined)
        return added
