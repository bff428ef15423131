"""Per-coin model heads: LightGBM (default) or XGBoost behind one interface and one artifact file set.

The tree kinds of models/kinds.py (`fit_tree` trains a `TreeHead`, `tree_predictor` loads a registered model
file); the facts of a kind (model file, model type, VIN type) come from its kinds.ModelKind entry.

A head is a 3-class classifier (0 neither, 1 breakout, 2 reversion) trained on the chronological training
segment with early stopping on the validation segment (multi_logloss). Saved as a directory holding

    model.txt | model.json   the booster in the library's own text format (never pickle), best iteration only
    head.json                metadata, identical keys for both kinds (see `save_head`)

Parameters are always written in LightGBM's names (the tuned space is LightGBM's); `xgboost_params` translates
them for XGBoost. Determinism: fixed seed, one thread count, LightGBM `deterministic` + `force_row_wise`,
XGBoost `hist` with a fixed seed -> byte-identical model files for identical inputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.evaluation.metrics import macro_average_precision  # noqa: F401  (the one macro AP; re-exported)

NUM_CLASS = 3
MODEL_FILES = {"lightgbm": "model.txt", "xgboost": "model.json"}
HEAD_FILE = "head.json"
HeadKind = Literal["lightgbm", "xgboost"]

# LightGBM name -> XGBoost name. min_child_samples has no XGBoost twin (min_child_weight counts hessian, not
# rows), so it is dropped; config/model/xgboost.yaml sets min_child_weight instead.
_LGB_TO_XGB = {
    "learning_rate": "eta",
    "num_leaves": "max_leaves",
    "max_depth": "max_depth",
    "feature_fraction": "colsample_bytree",
    "bagging_fraction": "subsample",
    "lambda_l1": "alpha",
    "lambda_l2": "lambda",
    "min_gain_to_split": "gamma",
    "max_bin": "max_bin",
}
# LightGBM-only switches that mean nothing (or the same fixed thing) to XGBoost.
_LGB_ONLY = {
    "objective",
    "num_class",
    "boosting_type",
    "boosting",
    "metric",
    "bagging_freq",
    "deterministic",
    "force_row_wise",
    "force_col_wise",
    "verbosity",
    "verbose",
    "seed",
    "num_threads",
    "min_child_samples",
    "min_child_samples_frac",
    "feature_pre_filter",
}


@dataclass
class Head:
    kind: HeadKind
    model: Any  # lightgbm.Booster | xgboost.Booster, trimmed to the best iteration
    feature_names: list[str]
    params: dict  # native parameters the library was given
    best_iteration: int  # number of boosting rounds kept (1-based)
    seed: int
    num_boost_round: int
    early_stopping_rounds: int
    encoder_sha256: str | None = None
    fit_seconds: float = 0.0
    extra: dict = field(default_factory=dict)


# LightGBM parameters fixed when a Dataset is binned: stage 1's variants and a study's trials share one binned
# Dataset, so these come from the fixed parameters, never from a trial's.
DATASET_KEYS = (
    "max_bin",
    "min_data_in_bin",
    "seed",
    "deterministic",
    "force_row_wise",
    "force_col_wise",
    "verbosity",
    "num_threads",
)


def lightgbm_params(params: dict, seed: int, num_threads: int = 1) -> dict:
    """LightGBM parameters with the multiclass task and the determinism switches fixed."""
    out = {
        "objective": "multiclass",
        "num_class": NUM_CLASS,
        "boosting_type": "gbdt",
        "metric": "multi_logloss",
        "verbosity": -1,
        **{k: v for k, v in params.items() if k != "min_child_samples_frac"},
        "seed": int(seed),
        "num_threads": int(num_threads),
        "deterministic": True,
    }
    if not out.get("force_col_wise"):
        out["force_row_wise"] = True
    return out


def xgboost_params(params: dict, seed: int, num_threads: int = 1, base: dict | None = None) -> dict:
    """XGBoost parameters from LightGBM-named ones, on top of `base` (config/model/xgboost.yaml `params`)."""
    out = {
        "objective": "multi:softprob",
        "num_class": NUM_CLASS,
        "eval_metric": "mlogloss",
        "tree_method": "hist",
        "verbosity": 0,
        **(base or {}),
    }
    for key, value in params.items():
        if key in _LGB_TO_XGB:
            out[_LGB_TO_XGB[key]] = value
        elif key in _LGB_ONLY:
            continue
        else:
            out[key] = value  # already an XGBoost name (from the xgboost model config)
    if out.get("max_leaves") and out.get("grow_policy") is None:
        out["grow_policy"] = "lossguide"  # LightGBM grows leaf-wise; lossguide is XGBoost's equivalent
    out["seed"] = int(seed)
    out["nthread"] = int(num_threads)
    return out


def train_head(
    kind: HeadKind,
    X_train: pd.DataFrame,
    y_train,
    X_val: pd.DataFrame,
    y_val,
    params: dict,
    seed: int,
    *,
    num_boost_round: int = 1000,
    early_stopping_rounds: int = 50,
    num_threads: int = 1,
    encoder_sha256: str | None = None,
    xgboost_base: dict | None = None,
) -> Head:
    """Fit one head; early stopping on the validation rows' multi_logloss; keep the best iteration only.

    `params` are LightGBM-named (tuned + fixed); for `kind="xgboost"` they are translated by `xgboost_params`.
    `encoder_sha256` is the version of the shared encoder whose outputs are among the features (None if none).
    """
    _check_features(X_train, X_val)
    y_train, y_val = _labels(y_train), _labels(y_val)
    names = [str(c) for c in X_train.columns]
    start = time.perf_counter()
    if kind == "lightgbm":
        import lightgbm as lgb

        native = lightgbm_params(params, seed, num_threads)
        dtrain = lgb.Dataset(X_train, label=y_train, feature_name=names, free_raw_data=True)
        dval = lgb.Dataset(X_val, label=y_val, reference=dtrain, free_raw_data=True)
        booster = lgb.train(
            native,
            dtrain,
            num_boost_round=num_boost_round,
            valid_sets=[dval],
            valid_names=["validation"],
            callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
        )
        best = int(booster.best_iteration or booster.current_iteration())
        # Round-trip through text so the in-memory head is exactly what save_head writes.
        model = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    elif kind == "xgboost":
        import xgboost as xgb

        native = xgboost_params(params, seed, num_threads, xgboost_base)
        dtrain = xgb.DMatrix(X_train, label=y_train, feature_names=names, missing=np.nan)
        dval = xgb.DMatrix(X_val, label=y_val, feature_names=names, missing=np.nan)
        booster = xgb.train(
            native,
            dtrain,
            num_boost_round=num_boost_round,
            evals=[(dval, "validation")],
            early_stopping_rounds=early_stopping_rounds,
            verbose_eval=False,
        )
        best = int(booster.best_iteration) + 1
        model = xgb.Booster(model_file=bytearray(booster[:best].save_raw(raw_format="json")))
    else:
        raise ValueError(f"unknown head kind {kind!r}; expected 'lightgbm' or 'xgboost'")
    return Head(
        kind=kind,
        model=model,
        feature_names=names,
        params=native,
        best_iteration=best,
        seed=int(seed),
        num_boost_round=int(num_boost_round),
        early_stopping_rounds=int(early_stopping_rounds),
        encoder_sha256=encoder_sha256,
        fit_seconds=time.perf_counter() - start,
    )


def predict_proba(head: Head, X: pd.DataFrame) -> np.ndarray:
    """Class probabilities, shape (rows, 3), columns 0 neither, 1 breakout, 2 reversion."""
    missing = [c for c in head.feature_names if c not in X.columns]
    if missing:
        raise ValueError(f"{len(missing)} model features missing from input, e.g. {missing[:3]}")
    X = X[head.feature_names]
    if head.kind == "lightgbm":
        proba = head.model.predict(X)
    else:
        import xgboost as xgb

        proba = head.model.predict(xgb.DMatrix(X, feature_names=head.feature_names, missing=np.nan))
    return np.asarray(proba, dtype=np.float64).reshape(len(X), NUM_CLASS)


def model_bytes(head: Head) -> bytes:
    if head.kind == "lightgbm":
        return head.model.model_to_string().encode("utf-8")
    return bytes(head.model.save_raw(raw_format="json"))


def save_head(path_dir, head: Head, extra: dict | None = None) -> dict:
    """Write `model.{txt,json}` and `head.json` atomically into `path_dir`; return the metadata.

    head.json keys (same for both kinds): kind, model_file, model_sha256, library, library_version,
    feature_names, n_features, num_class, best_iteration, num_boost_round, early_stopping_rounds, params,
    seed, encoder_sha256, extra. No timings: the file must be byte-identical for identical inputs.
    """
    path_dir = Path(path_dir)
    model_file = MODEL_FILES[head.kind]
    data = model_bytes(head)
    artifacts.write_bytes(path_dir / model_file, data)
    meta = {
        "kind": head.kind,
        "model_file": model_file,
        "model_sha256": artifacts.sha256_file(path_dir / model_file),
        "library": head.kind,
        "library_version": _library_version(head.kind),
        "feature_names": head.feature_names,
        "n_features": len(head.feature_names),
        "num_class": NUM_CLASS,
        "best_iteration": head.best_iteration,
        "num_boost_round": head.num_boost_round,
        "early_stopping_rounds": head.early_stopping_rounds,
        "params": head.params,
        "seed": head.seed,
        "encoder_sha256": head.encoder_sha256,
        "extra": extra or {},
    }
    artifacts.write_json(path_dir / HEAD_FILE, meta)
    return meta


def load_head(path_dir) -> Head:
    """Read a head written by `save_head`; refuse a model file whose sha256 differs from head.json."""
    path_dir = Path(path_dir)
    meta = artifacts.read_json(path_dir / HEAD_FILE)
    model_path = path_dir / meta["model_file"]
    if artifacts.sha256_file(model_path) != meta["model_sha256"]:
        raise ValueError(f"{model_path} does not match the sha256 recorded in {path_dir / HEAD_FILE}")
    if meta["kind"] == "lightgbm":
        import lightgbm as lgb

        model = lgb.Booster(model_file=str(model_path))
    elif meta["kind"] == "xgboost":
        import xgboost as xgb

        model = xgb.Booster(model_file=str(model_path))
    else:
        raise ValueError(f"unknown head kind {meta['kind']!r} in {path_dir / HEAD_FILE}")
    return Head(
        kind=meta["kind"],
        model=model,
        feature_names=list(meta["feature_names"]),
        params=meta["params"],
        best_iteration=int(meta["best_iteration"]),
        seed=int(meta["seed"]),
        num_boost_round=int(meta["num_boost_round"]),
        early_stopping_rounds=int(meta["early_stopping_rounds"]),
        encoder_sha256=meta["encoder_sha256"],
        extra=meta.get("extra", {}),
    )


def _labels(y) -> np.ndarray:
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= NUM_CLASS):
        raise ValueError("labels must be class codes 0, 1, 2 (drop -1/-2/-3 rows first)")
    return y.astype(np.int32)


def _check_features(X_train: pd.DataFrame, X_val: pd.DataFrame) -> None:
    if list(X_train.columns) != list(X_val.columns):
        raise ValueError("training and validation features must have the same columns in the same order")


def _library_version(kind: str) -> str:
    if kind == "lightgbm":
        import lightgbm as lgb

        return lgb.__version__
    import xgboost as xgb

    return xgb.__version__


# ---- the production interface (kinds.FittedHead) and the registry loader of the tree kinds -----------------
@dataclass
class TreeHead:
    """A LightGBM or XGBoost head behind the production interface (kinds.FittedHead). `spec` is the kind's
    kinds.ModelKind (duck-typed: kinds.py imports this module)."""

    head: Head
    spec: Any
    log: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.spec.name

    @property
    def model_type(self) -> str:
        return self.spec.model_type

    @property
    def vin_type(self) -> str:
        return self.spec.vin_type

    @property
    def best_iteration(self) -> int:
        return self.head.best_iteration

    @property
    def native_params(self) -> dict:
        return self.head.params

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return predict_proba(self.head, X)

    def save(self, folder) -> Path:
        path = Path(folder) / self.spec.model_file
        artifacts.write_bytes(path, model_bytes(self.head))
        return path


def fit_tree(spec, X_train, y_train, X_val, y_val, params, seed, threads, model_cfg, **_bars) -> TreeHead:
    """The `fit` of the tree kinds (kinds.ModelKind `spec`); the bar table of the windowed kinds is not
    needed."""
    head = train_head(
        spec.name,
        X_train,
        y_train,
        X_val,
        y_val,
        params,
        seed,
        num_boost_round=int(model_cfg["num_boost_round"]),
        early_stopping_rounds=int(model_cfg["early_stopping_rounds"]),
        num_threads=int(threads),
        xgboost_base=model_cfg.get("xgboost_base"),
    )
    # No fit seconds: training_log.json is hashed into sha256.txt, so it must be the same bytes on every
    # rerun; the job's time is in results/benchmarks/production/.
    log = {
        "best_iteration": head.best_iteration,
        "num_boost_round": head.num_boost_round,
        "early_stopping_rounds": head.early_stopping_rounds,
        "library_version": _library_version(spec.name),
    }
    return TreeHead(head, spec, log)


def refit_tree(spec, X, y, params, seed, threads, model_cfg, *, rounds: int, **_bars) -> TreeHead:
    """The `refit` of the tree kinds (kinds.ModelKind `spec`): the same parameters on all usable rows `X`,
    `y`, exactly `rounds` boosting rounds (production.refit_rounds), no validation set and no early
    stopping."""
    _check_features(X, X)
    y = _labels(y)
    names = [str(c) for c in X.columns]
    rounds = int(rounds)
    if rounds < 1:
        raise ValueError(f"refit needs at least one boosting round, got {rounds}")
    if spec.name == "lightgbm":
        import lightgbm as lgb

        native = lightgbm_params(params, seed, threads)
        booster = lgb.train(native, lgb.Dataset(X, label=y, feature_name=names), num_boost_round=rounds)
        model = lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
    elif spec.name == "xgboost":
        import xgboost as xgb

        native = xgboost_params(params, seed, threads, model_cfg.get("xgboost_base"))
        dtrain = xgb.DMatrix(X, label=y, feature_names=names, missing=np.nan)
        booster = xgb.train(native, dtrain, num_boost_round=rounds, verbose_eval=False)
        model = xgb.Booster(model_file=bytearray(booster.save_raw(raw_format="json")))
    else:
        raise ValueError(f"unknown head kind {spec.name!r}; expected 'lightgbm' or 'xgboost'")
    head = Head(spec.name, model, names, native, rounds, int(seed), rounds, 0)
    log = {"rounds": rounds, "library_version": _library_version(spec.name)}
    return TreeHead(head, spec, log)


def tree_predictor(library: HeadKind):
    """The kinds.ModelKind `predictor` of a tree kind: (booster, predict(X float32 (n, features)) -> (n, 3))
    from the verified bytes of its model file."""

    def load(data: bytes, features: list[str], folder: Path, load_folder) -> tuple[Any, Any]:
        if library == "lightgbm":
            import lightgbm as lgb

            model = lgb.Booster(model_str=data.decode("utf-8"))
            return model, model.predict
        import xgboost as xgb

        model = xgb.Booster()
        model.load_model(bytearray(data))
        return model, lambda X: model.predict(xgb.DMatrix(X, feature_names=features))

    return load
