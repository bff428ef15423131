"""Champion predictions: batch over the whole history, and live appends of the bars newer than the last
prediction.

One parquet per symbol, `predictions/<SYMBOL>.parquet`, columns (PRED_COLUMNS), from the class-probability
champions of the (symbol, high / low) slots:
    timestamp (datetime64[ns, UTC], bar open time; the prediction uses bars <= timestamp only)
    vin (str, the champion that predicted), side ('high' / 'low'),
    p_neither, p_breakout, p_reversion (float64, sum to 1)
sorted by (timestamp, side), unique on (timestamp, side).

Live appends compute features with the same code as training (workflow_scripts.features.build_features on each
coin's trailing history, then add_cross_coin), on `history_bars` bars before the first new bar: enough for
every rolling window of the feature spec, so the new rows equal what a batch run over the full history
computes (tests/registry/test_predictions.py proves it). Appending is idempotent (rows already present for a
side are never recomputed) and atomic (the file is replaced whole, under a file lock).

An agent champion (the RL line's (symbol, "both") slot: an agent, hybrid or agent ensemble, docs/AGENTS.md)
gives a position in [-1, 1], not class probabilities: `predict_frame` refuses it by VIN and kind, and
`agent_positions` replays its TorchScript policy over the bars after its last bar instead (the paper
replay's positions, one per bar: `predictions/<SYMBOL>.positions.parquet`, POSITION_COLUMNS).
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
from workflow_scripts.agents import paper as agent_paper
from workflow_scripts.agents.environment import EnvSettings, TradingEnv, market_data
from workflow_scripts.agents.hybrid import CLASSES
from workflow_scripts.agents.replay import Policy, replay
from workflow_scripts.evaluation.costs import costs_from_snapshot
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
    """One model over a feature table -> prediction rows (PRED_COLUMNS); an RL line model is refused."""
    if reg.is_agent(model.entry):
        raise reg.RegistryError(
            f"model {model.vin} is a {model_kind(model)} (model type {model.model_type}) of the RL line: "
            "it gives a position, not class probabilities (swingflow predict writes an agent champion's "
            "positions: predictions.agent_positions)"
        )
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


def class_champions(registry_dir, symbol: str) -> list[str]:
    """The champion VINs of `symbol`'s class-probability slots (high / low: not the RL line's "both")."""
    sides = reg.read_champions(registry_dir, symbol)["sides"]
    return [
        slot["champion"]
        for side, slot in sorted(sides.items())
        if slot.get("champion") and side != reg.AGENT_SIDE
    ]


def agent_champion(registry_dir, symbol: str) -> str | None:
    """The champion VIN of `symbol`'s RL line slot (side "both"), None when it has none."""
    return (reg.read_champions(registry_dir, symbol)["sides"].get(reg.AGENT_SIDE) or {}).get("champion")


def champion_models(registry_dir, symbol: str) -> list[reg.LoadedModel]:
    """The verified class-probability champion of each side of `symbol` (side order), its deployed model:
    the refit on every usable bar when the folder has one (models/folder.py REFIT_DIR), else the evaluated
    model. An agent champion is not one of them (agent_positions)."""
    vins = class_champions(registry_dir, symbol)
    if not vins:
        agent = agent_champion(registry_dir, symbol)
        also = f" (its agent champion {agent} gives positions: agent_positions)" if agent else ""
        raise reg.RegistryError(f"{symbol} has no class-probability champion: nothing to predict with{also}")
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
    if not class_champions(registry_dir, symbol):
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


# ---- the RL line's champions: a policy replayed over bars (docs/AGENTS.md) ---------------------------------
POLICY_TYPES = ("agent", "hybrid", "agent_ensemble")  # the registry model types that trade a position
POSITION_COLUMNS = ["timestamp", "vin", "position"]
AGENT_MARGIN = 256  # bars before the first new bar fed to the extractor and the env (windows, sigma)


def model_kind(model: reg.LoadedModel) -> str:
    """config.json `model_kind` (ppo, sac, hybrid_ppo, agent_ensemble, cnn_lstm, ...), else the model type."""
    return str(artifacts.read_json(model.folder / "config.json").get("model_kind") or model.model_type)


def check_policy(model: reg.LoadedModel) -> dict:
    """The config.json of a model that trades a position (agent, hybrid, agent ensemble); anything else is
    refused by VIN and kind."""
    if model.model_type not in POLICY_TYPES:
        raise reg.RegistryError(
            f"model {model.vin} is a {model_kind(model)} (model type {model.model_type}): not a policy "
            f"that trades a position; agent champions, paper slots and positions need one of "
            f"{list(POLICY_TYPES)}"
        )
    cfg = artifacts.read_json(model.folder / "config.json")
    missing = [k for k in ("last_bar", "env", "observation", "sigma_bars") if not cfg.get(k)]
    if missing:
        raise reg.RegistryError(
            f"{model.folder / 'config.json'}: no {missing} (packaged before paper trading of a "
            f"{model.model_type} existed): repackage it"
        )
    return cfg


def agent_policy(model: reg.LoadedModel, cfg: Mapping) -> Policy:
    """The deterministic policy of a registered agent or hybrid (its TorchScript `action`) or agent ensemble
    (its members' TorchScript policies combined as in its evaluation: agents/ensemble.EnsemblePolicy)."""
    if model.model_type != "agent_ensemble":
        return agent_paper.scripted_policy(model.model)
    from workflow_scripts.agents.ensemble import EnsemblePolicy, Member  # heavy: torch

    doc = artifacts.read_json(model.folder / model.entry["model_file"])  # members in model.model's order
    members = [
        Member(m["code"], m["kind"], m["trial"], m["validation_value"], m["lookback"], net)
        for m, (_, net) in zip(doc["members"], model.model)
    ]
    ensemble = EnsemblePolicy(members, doc["method"], len(cfg["observation"]["features"]))
    return lambda obs: ensemble.predict(obs)[0]


def _embeddings(registry_dir, model: reg.LoadedModel, table: pd.DataFrame, timestamps) -> dict:
    """cnn_lstm_<i> columns: the embeddings of the model's registered CNN-LSTM (checked against the sha256
    recorded at registration) over the feature rows `table`."""
    deps = model.entry.get("dependencies") or {}
    if not deps.get("cnn_lstm"):
        raise reg.RegistryError(f"agent {model.vin}: its index entry names no CNN-LSTM; register it again")
    cnn = reg.load_model(registry_dir, deps["cnn_lstm"])
    if cnn.entry["model_sha256"] != deps.get("cnn_lstm_sha256"):
        raise reg.RegistryError(
            f"agent {model.vin}: its CNN-LSTM {deps['cnn_lstm']} is not the one it was registered with "
            f"(sha256 {cnn.entry['model_sha256'][:12]} vs {str(deps.get('cnn_lstm_sha256'))[:12]})"
        )
    missing = [c for c in cnn.features if c not in table.columns]
    if missing:
        raise reg.RegistryError(
            f"agent {model.vin}: the feature table lacks CNN-LSTM column(s) {missing[:5]}"
        )
    emb = cnn.predict_fn(table[cnn.features].to_numpy(np.float32), timestamps)
    return {f"cnn_lstm_{i}": emb[:, i] for i in range(emb.shape[1])}


def _probabilities(registry_dir, model: reg.LoadedModel, cfg: Mapping, table: pd.DataFrame) -> dict:
    """p_<side>_<class> columns of a hybrid: the class probabilities of the production models it was built
    on (config.json dependencies: VIN and model sha256 per side), their EVALUATED models as in its study,
    from the registry. Causal: a row's probabilities read the feature row of its bar (bars <= t)."""
    out = {}
    for side, dep in sorted((cfg.get("dependencies") or {}).items()):
        if not isinstance(dep, Mapping) or "vin" not in dep:
            continue
        try:
            production = reg.load_model(registry_dir, dep["vin"], model="evaluated")
        except reg.RegistryError as exc:
            raise reg.RegistryError(
                f"hybrid {model.vin}: its {side} production model {dep['vin']} is not in the registry "
                f"({exc}); register the production models first (register_models)"
            ) from exc
        if production.entry["model_sha256"] != dep["model_sha256"]:
            raise reg.RegistryError(
                f"hybrid {model.vin}: the registered {dep['vin']} is not the {side} model it was built on "
                f"(sha256 {production.entry['model_sha256'][:12]} vs {dep['model_sha256'][:12]})"
            )
        proba = production.predict_proba(table)
        out |= {f"p_{side}_{c}": proba[:, i] for i, c in enumerate(CLASSES)}
    return out


def agent_observation(
    registry_dir, model: reg.LoadedModel, cfg: Mapping, bars: pd.DataFrame, features: pd.DataFrame
) -> np.ndarray:
    """The standardised observation features of a policy on the rows of `bars` (their feature rows found in
    `features` by timestamp): its CNN-LSTM's embeddings, and for a hybrid its production models'
    probabilities, in the order config.json `observation.features` lists, standardised with the train
    statistics recorded there (never recomputed on new bars)."""
    table = features.set_index(pd.to_datetime(features["timestamp"], utc=True))
    ts = pd.to_datetime(bars["timestamp"], utc=True)
    at = table.index.get_indexer(ts)
    if (at < 0).any():
        first = bars["timestamp"].iloc[int(np.flatnonzero(at < 0)[0])]
        raise reg.RegistryError(
            f"agent {model.vin}: the feature table lacks {int((at < 0).sum())} of the bars, first {first}"
        )
    rows = table.iloc[at].reset_index(drop=True)
    names = list(cfg["observation"]["features"])
    columns = _embeddings(registry_dir, model, rows, bars["timestamp"].reset_index(drop=True))
    if any(n.startswith("p_") for n in names):
        columns |= _probabilities(registry_dir, model, cfg, rows)
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise reg.RegistryError(
            f"agent {model.vin}: observes {unknown[:3]}, which neither its CNN-LSTM nor its production "
            "models give (replaying it on other columns is not built)"
        )
    return agent_paper.standardised(np.column_stack([columns[n] for n in names]), cfg["observation"])


def agent_replay_inputs(
    registry_dir, model: reg.LoadedModel, bars: pd.DataFrame, features: pd.DataFrame
) -> tuple[dict, pd.DataFrame, np.ndarray]:
    """(config.json, the bars replayed, their standardised observation features) of a policy on a
    symbol's bars: the bars up to the feature table's last (newer bars wait for their features), from
    AGENT_MARGIN bars before the first bar after the policy's `last_bar` (history for the windows)."""
    cfg = check_policy(model)
    ts = pd.to_datetime(bars["timestamp"], utc=True)
    bars = bars[(ts <= pd.to_datetime(features["timestamp"], utc=True).max()).to_numpy()]
    ts = pd.to_datetime(bars["timestamp"], utc=True)
    first_new = int(np.sum((ts <= agent_paper.utc(cfg["last_bar"])).to_numpy()))
    part = bars.iloc[max(0, first_new - AGENT_MARGIN) :].reset_index(drop=True)
    return cfg, part, agent_observation(registry_dir, model, cfg, part, features)


def agent_positions(registry_dir, vin: str, bars: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """The positions of a registered policy (agent, hybrid, agent ensemble; anything else refused by VIN and
    kind) at every bar after its `last_bar` that has a feature row: POSITION_COLUMNS, `position` chosen at
    the bar's close from bars <= it, replayed flat from the first new bar through the same TradingEnv as its
    paper ledger (whose positions these are), the last bar's from the state the replay ends in. Empty with
    fewer than two new bars."""
    model = reg.load_model(registry_dir, vin, model="deployed")
    cfg, part, obs = agent_replay_inputs(registry_dir, model, bars, features)
    ts = pd.to_datetime(part["timestamp"], utc=True)
    lo = int(np.sum((ts <= agent_paper.utc(cfg["last_bar"])).to_numpy()))
    if len(part) - lo < 2:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in POSITION_DTYPES.items()})
    settings = EnvSettings.from_mapping(dict(cfg["env"]) | {"episode_bars": None})
    data = market_data(obs, part["close"].to_numpy(dtype=float), part["timestamp"], int(cfg["sigma_bars"]))
    costs = costs_from_snapshot(artifacts.read_json(model.folder / "costs.json"))
    env = TradingEnv(data, (lo, len(part)), costs, settings)
    policy = agent_policy(model, cfg)
    rec = replay(policy, env)
    last = env._target(
        policy(rec.next_obs)
    )  # the position at the last bar, from the state the replay ends in
    return pd.DataFrame(
        {
            "timestamp": ts.iloc[lo:].astype("datetime64[ns, UTC]").to_numpy(),
            "vin": vin,
            "position": np.append(rec.positions, last).astype("float64"),
        }
    )


POSITION_DTYPES = {"timestamp": "datetime64[ns, UTC]", "vin": object, "position": "float64"}


def write_positions(
    registry_dir, symbol: str, bars: pd.DataFrame, features: pd.DataFrame, out_path: str | os.PathLike
) -> pd.DataFrame:
    """`symbol`'s agent champion's positions (agent_positions) written to `out_path` whole (the replay is
    deterministic: rerunning on the same bars writes the same rows)."""
    vin = agent_champion(registry_dir, symbol)
    if vin is None:
        raise reg.RegistryError(f"{symbol} has no agent champion: no positions to predict")
    positions = agent_positions(registry_dir, vin, bars, features)
    with FileLock(str(out_path) + ".lock"):
        artifacts.write_parquet(out_path, positions)
    return positions
