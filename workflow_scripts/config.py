"""The one config loader: Hydra composes `config/`, a typed schema checks it, the workflow gets a plain dict.

Snakemake passes its own `--config` dictionary in; the keys it may hold are the group choices
(`env=staging`, `universe=majors`, ...) and `overrides`, a list of Hydra dotted overrides. Anything else, an
unknown key in an override, a value of the wrong type or a value out of range stops the run at start-up with a
ConfigError naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,20}$")
TARGET_TYPES = ("high_breakout", "high_reversion", "low_breakout", "low_reversion")


class ConfigError(ValueError):
    """A configuration problem, with the key and what is allowed in the message."""


# ---- schema -------------------------------------------------------------------------------------------------
@dataclass
class DataSpan:
    raw_dir: str = "data/raw"
    start: Optional[str] = None
    end: Optional[str] = None


@dataclass
class Compute:
    threads_per_job: int = 1
    device: str = "auto"
    # Minutes a job may run on its first attempt, per rule (seed 000: 45 by default); each retry gets
    # attempt x that. Rules not named keep their own default (rules/common.smk: runtime_min).
    runtime_minutes: dict[str, int] = field(default_factory=dict)


@dataclass
class Storage:
    registry_dir: str = "registry/local-dev"
    dvc_remote: str = "local"


@dataclass
class Notifications:
    telegram: bool = False
    webhook_url_env: Optional[str] = None


@dataclass
class EnvConfig:
    name: str = "local-dev"
    data: DataSpan = field(default_factory=DataSpan)
    compute: Compute = field(default_factory=Compute)
    storage: Storage = field(default_factory=Storage)
    notifications: Notifications = field(default_factory=Notifications)
    tracking: str = "none"
    # Refuse to start unless code/config are committed and the raw data is DVC-tracked (workflow_scripts/provenance.py)
    require_provenance: bool = False


@dataclass
class UniverseConfig:
    name: str = "demo"
    symbols: list[str] = field(default_factory=list)


@dataclass
class TargetsConfig:
    name: str = "default"
    windows: list[int] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    std_thresholds: list[float] = field(default_factory=list)
    barrier_thresholds: list[float] = field(default_factory=list)
    horizon_multiplier: int = 1
    sigma_min_bars: int = 24


@dataclass
class FeaturesConfig:
    families: list[str] = field(default_factory=list)
    lookbacks: list[int] = field(default_factory=list)
    lags: list[int] = field(default_factory=list)
    dtype: str = "float32"


@dataclass
class SplitConfig:
    name: str = "default"
    train_frac: float = 0.6
    validation_frac: float = 0.2
    embargo_bars: int = 24


@dataclass
class Stage1Config:
    name: str = "default"
    num_boost_round: int = 300
    early_stopping_rounds: int = 30
    params: dict[str, Any] = field(default_factory=dict)
    min_train_rows: int = 200
    min_class_rows: int = 5


@dataclass
class ScreeningConfig:
    name: str = "default"
    max_missing_frac: float = 0.70
    max_nan_frac: float = 0.90
    min_variance: float = 1e-12
    max_same_value_frac: float = 0.95
    max_abs_corr: float = 0.90
    corr_block_size: int = 1024


@dataclass
class SelectionConfig:
    name: str = "default"
    subsample_rows: int = 25000
    val_frac: float = 0.2
    num_boost_round: int = 100
    early_stopping_rounds: int = 20
    top_k: int = 200
    keep_min: int = 300
    keep_max: int = 500
    score_coverage: float = 0.95
    seed: int = 42
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class CostsConfig:
    name: str = "default"
    source: str = "config"
    default: Optional[dict[str, Any]] = None
    symbols: dict[str, Any] = field(default_factory=dict)


@dataclass
class GatesConfig:
    name: str = "strict"
    label: str = ""
    min_trades: int = 30
    min_dsr: float = 0.95
    max_drawdown: float = 0.25
    min_net_return: float = 0.0


@dataclass
class GradesConfig:
    name: str = "default"
    basis: str = "per_trade"
    method: str = "absolute"
    table: list[Any] = field(default_factory=list)
    fail_grade: str = "F"
    percentile_scale: list[Any] = field(default_factory=list)


@dataclass
class EvaluationConfig:
    name: str = "default"
    allow_short: bool = True
    allow_overlap: bool = False
    position_size: float = 1.0
    threshold_grid: list[float] = field(default_factory=list)
    threshold_min_trades: int = 10
    fallback_threshold: float = 0.5


@dataclass
class TuningBudget:
    trials: Optional[int] = None
    minutes: Optional[float] = None


@dataclass
class TuningPruner:
    kind: str = "median"
    report: str = "fold"
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1


@dataclass
class TuningCV:
    n_folds: int = 5
    mode: str = "expanding"
    embargo_bars: int = 24
    min_train_rows: int = 30
    train_size: Optional[int] = None


@dataclass
class TuningConfig:
    name: str = "default"
    budget: TuningBudget = field(default_factory=TuningBudget)
    shares: dict[str, float] = field(default_factory=dict)
    early_stopping_rounds: dict[str, int] = field(default_factory=dict)
    max_rounds: int = 1000
    representative_rule: str = "best_validation_ap"
    space: dict[str, list[Any]] = field(default_factory=dict)
    focus_radius: float = 0.25
    fixed: dict[str, Any] = field(default_factory=dict)
    seed: int = 42
    num_threads: int = 1
    sampler: str = "tpe"
    pruner: TuningPruner = field(default_factory=TuningPruner)
    report_every: int = 10
    stale_after_s: float = 3600.0
    cv: TuningCV = field(default_factory=TuningCV)


@dataclass
class ModelConfig:
    """The production head (config/model): tree kinds read the boosting keys, torch kinds the training keys."""
    name: str = "lightgbm"
    kind: str = "lightgbm"
    seed: int = 42
    num_threads: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    num_boost_round: Optional[int] = None
    early_stopping_rounds: Optional[int] = None
    xgboost_base: Optional[dict[str, Any]] = None
    seq_len: Optional[int] = None
    max_epochs: Optional[int] = None
    early_stopping_patience: Optional[int] = None
    batch_size: Optional[int] = None
    gpu_batch_size: Optional[int] = None
    min_batch_size: Optional[int] = None
    eval_batch_size: Optional[int] = None
    device: Optional[str] = None
    amp: Optional[str] = None
    compile: Optional[str] = None
    deterministic: Optional[bool] = None
    num_workers: Optional[int] = None
    cpu_fallback: Optional[bool] = None


@dataclass
class EncoderConfig:
    """The optional shared encoder (config/encoder): none, pca (shared_encoder.py) or autoencoder."""
    name: str = "none"
    kind: str = "none"
    n_components: Optional[int] = None
    columns: str = "own"
    prefix: Optional[str] = None
    seed: int = 42
    num_threads: int = 1
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class EnsembleConfig:
    """Per (symbol, side) ensembles of the windows' production models (config/ensemble; ensemble_production.py)."""
    name: str = "disabled"
    enabled: bool = False
    kind: str = "auto"  # average, stacker, or auto (better validation AP; stacker scored out-of-fold)
    top_k: int = 3
    C: float = 1.0
    oof_folds: int = 5


@dataclass
class RegistryConfig:
    name: str = "default"
    margin: float = 0.005
    recent_bars: Optional[int] = 720
    min_rows: int = 20
    promote_gate_profiles: list[str] = field(default_factory=lambda: ["strict"])


@dataclass
class WorkflowConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    universe: UniverseConfig = field(default_factory=UniverseConfig)
    targets: TargetsConfig = field(default_factory=TargetsConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    screening: ScreeningConfig = field(default_factory=ScreeningConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    costs: CostsConfig = field(default_factory=CostsConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    gates: GatesConfig = field(default_factory=GatesConfig)
    grades: GradesConfig = field(default_factory=GradesConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)


GROUPS = tuple(f.name for f in dataclasses.fields(WorkflowConfig))
SNAKEMAKE_KEYS = GROUPS + ("overrides",)


# ---- loading ------------------------------------------------------------------------------------------------
def overrides_from_snakemake(smk_config: dict) -> list[str]:
    """Turn Snakemake's `--config` dict into Hydra overrides; unknown keys are refused."""
    unknown = sorted(set(smk_config) - set(SNAKEMAKE_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown --config key(s) {unknown}; allowed: {', '.join(SNAKEMAKE_KEYS)} "
            "(group choices such as env=staging, or overrides=[\"group.key=value\", ...])"
        )
    overrides = [f"{group}={smk_config[group]}" for group in GROUPS if group in smk_config]
    extra = smk_config.get("overrides", [])
    if isinstance(extra, str):
        extra = [extra]
    if not isinstance(extra, (list, tuple)) or not all(isinstance(o, str) for o in extra):
        raise ConfigError(f"--config overrides must be a list of 'group.key=value' strings, got {extra!r}")
    return overrides + list(extra)


def compose(overrides: list[str] | None = None, config_dir: Path = CONFIG_DIR) -> dict:
    """Compose, type-check and validate; returns a plain dict (lists and dicts only)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = list(overrides or [])
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            composed = hydra_compose(config_name="config", overrides=overrides)
    except Exception as exc:  # Hydra's own errors already name the key and the options
        raise ConfigError(f"configuration could not be composed from {config_dir}: {exc}") from exc
    finally:
        GlobalHydra.instance().clear()
    try:
        typed = OmegaConf.merge(OmegaConf.structured(WorkflowConfig), composed)
    except OmegaConfBaseException as exc:
        raise ConfigError(_describe_omegaconf_error(exc)) from exc
    cfg = OmegaConf.to_container(typed, resolve=True)
    validate(cfg)
    return cfg


def _describe_omegaconf_error(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None) or "?"
    msg = str(exc).splitlines()[0]
    return f"config key '{key}': {msg}"


# ---- value checks -------------------------------------------------------------------------------------------
def _require(ok: bool, key: str, expected: str, got: Any) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}': expected {expected}, got {got!r}")


def validate(cfg: dict) -> None:
    symbols = cfg["universe"]["symbols"]
    _require(len(symbols) > 0, "universe.symbols", "at least one symbol", symbols)
    for i, sym in enumerate(symbols):
        _require(
            bool(SYMBOL_PATTERN.match(sym)), f"universe.symbols[{i}]", "upper-case letters/digits like BTCUSDT", sym
        )
    _require(len(set(symbols)) == len(symbols), "universe.symbols", "no duplicates", symbols)

    t = cfg["targets"]
    _require(len(t["windows"]) > 0 and all(w >= 2 for w in t["windows"]), "targets.windows",
             "a non-empty list of integers >= 2 (bars)", t["windows"])
    _require(len(set(t["windows"])) == len(t["windows"]), "targets.windows", "no duplicates", t["windows"])
    bad = [x for x in t["types"] if x not in TARGET_TYPES]
    _require(len(t["types"]) > 0 and not bad, "targets.types", f"a non-empty subset of {list(TARGET_TYPES)}",
             t["types"])
    for key in ("std_thresholds", "barrier_thresholds"):
        vals = t[key]
        _require(len(vals) > 0 and all(v > 0 for v in vals), f"targets.{key}", "a non-empty list of numbers > 0",
                 vals)
        _require(len(set(vals)) == len(vals), f"targets.{key}", "no duplicates", vals)
    _require(t["horizon_multiplier"] >= 1, "targets.horizon_multiplier", "an integer >= 1", t["horizon_multiplier"])
    _require(t["sigma_min_bars"] >= 2, "targets.sigma_min_bars", "an integer >= 2", t["sigma_min_bars"])

    s = cfg["split"]
    _require(0 < s["train_frac"] < 1, "split.train_frac", "a number in (0, 1)", s["train_frac"])
    _require(0 < s["validation_frac"] < 1 - s["train_frac"], "split.validation_frac",
             f"a number in (0, {1 - s['train_frac']:.3g}) so that a test segment remains", s["validation_frac"])
    _require(s["embargo_bars"] >= 0, "split.embargo_bars", "an integer >= 0", s["embargo_bars"])

    from workflow_scripts.costs import ConfigCostProvider
    from workflow_scripts.gates import validate_profile
    from workflow_scripts.grades import BASES

    try:
        provider = ConfigCostProvider(cfg["costs"])
        for sym in symbols:
            provider.costs_for(sym)
        validate_profile(cfg["gates"])
    except ValueError as exc:
        raise ConfigError(f"config group 'costs'/'gates': {exc}") from exc
    _require(cfg["grades"]["basis"] in BASES, "grades.basis", f"one of {list(BASES)}", cfg["grades"]["basis"])
    _require(cfg["grades"]["method"] in ("absolute", "percentile"), "grades.method", "absolute or percentile",
             cfg["grades"]["method"])
    ev = cfg["evaluation"]
    _require(len(ev["threshold_grid"]) > 0 and all(0 <= t < 1 for t in ev["threshold_grid"]),
             "evaluation.threshold_grid", "a non-empty list of probabilities in [0, 1)", ev["threshold_grid"])
    _require(0 < ev["position_size"] <= 1, "evaluation.position_size", "a number in (0, 1]", ev["position_size"])

    sc = cfg["screening"]
    for key in ("max_missing_frac", "max_nan_frac", "max_same_value_frac", "max_abs_corr"):
        _require(0 < sc[key] <= 1, f"screening.{key}", "a fraction in (0, 1]", sc[key])
    se = cfg["selection"]
    _require(1 <= se["keep_min"] <= se["keep_max"], "selection.keep_min",
             f"an integer in [1, selection.keep_max={se['keep_max']}]", se["keep_min"])
    _require(se["top_k"] >= 1 and se["subsample_rows"] >= 100, "selection.top_k/subsample_rows",
             "top_k >= 1 and subsample_rows >= 100", (se["top_k"], se["subsample_rows"]))

    rg = cfg["registry"]
    _require(0 <= rg["margin"] < 1, "registry.margin", "a number in [0, 1) (macro average precision)", rg["margin"])
    _require(rg["recent_bars"] is None or rg["recent_bars"] >= 24, "registry.recent_bars",
             "an integer >= 24 (bars) or null", rg["recent_bars"])
    _require(rg["min_rows"] >= 1, "registry.min_rows", "an integer >= 1", rg["min_rows"])
    profiles = sorted(p.stem for p in (CONFIG_DIR / "gates").glob("*.yaml"))
    _require(all(g in profiles for g in rg["promote_gate_profiles"]), "registry.promote_gate_profiles",
             f"gate profile names from {profiles}", rg["promote_gate_profiles"])

    validate_tuning_and_heads(cfg)

    st = cfg["stage1"]
    _require(st["num_boost_round"] >= 1, "stage1.num_boost_round", "an integer >= 1", st["num_boost_round"])
    _require(st["early_stopping_rounds"] >= 1, "stage1.early_stopping_rounds", "an integer >= 1",
             st["early_stopping_rounds"])
    _require(cfg["env"]["tracking"] in ("none", "mlflow"), "env.tracking", "none or mlflow", cfg["env"]["tracking"])
    _require(cfg["env"]["compute"]["threads_per_job"] >= 1, "env.compute.threads_per_job", "an integer >= 1",
             cfg["env"]["compute"]["threads_per_job"])
    for key in ("start", "end"):
        value = cfg["env"]["data"][key]
        if value is not None:
            _require(bool(re.match(r"^\d{4}-\d{2}-\d{2}", value)), f"env.data.{key}", "a date YYYY-MM-DD or null",
                     value)


MODEL_KINDS = ("lightgbm", "xgboost", "torch_mlp", "torch_transformer")
ENCODER_KINDS = ("none", "pca", "autoencoder")


def validate_tuning_and_heads(cfg: dict) -> None:
    """The tuning, model and encoder groups (docs/TUNING.md)."""
    tu = cfg["tuning"]
    stages = ("stage1", "stage2", "stage3", "stage4")
    _require(sorted(tu["shares"]) == sorted(stages) and all(v >= 0 for v in tu["shares"].values())
             and abs(sum(tu["shares"].values()) - 1) < 1e-6, "tuning.shares",
             f"shares >= 0 for exactly {list(stages)} summing to 1", tu["shares"])
    b = tu["budget"]
    _require(b["trials"] is not None or b["minutes"] is not None, "tuning.budget",
             "trials and/or minutes (the total over all stages)", b)
    _require(b["trials"] is None or b["trials"] >= 1, "tuning.budget.trials", "an integer >= 1 or null", b["trials"])
    _require(b["minutes"] is None or b["minutes"] > 0, "tuning.budget.minutes", "a number > 0 or null", b["minutes"])
    _require(sorted(tu["early_stopping_rounds"]) == ["stage2", "stage3", "stage4"]
             and all(v >= 1 for v in tu["early_stopping_rounds"].values()), "tuning.early_stopping_rounds",
             "integers >= 1 for stage2, stage3, stage4", tu["early_stopping_rounds"])
    _require(tu["max_rounds"] >= 1, "tuning.max_rounds", "an integer >= 1", tu["max_rounds"])
    rules = ("best_validation_ap", "most_rows", "median_ap")
    _require(tu["representative_rule"] in rules, "tuning.representative_rule", f"one of {list(rules)}",
             tu["representative_rule"])
    _require(len(tu["space"]) > 0 and all(len(v) > 0 for v in tu["space"].values()), "tuning.space",
             "a non-empty list of values per parameter", tu["space"])
    _require(tu["sampler"] in ("tpe", "random"), "tuning.sampler", "tpe or random", tu["sampler"])
    _require(tu["pruner"]["kind"] in ("median", "successive_halving", "none"), "tuning.pruner.kind",
             "median, successive_halving or none", tu["pruner"]["kind"])
    _require(tu["pruner"]["report"] in ("fold", "iteration"), "tuning.pruner.report", "fold or iteration",
             tu["pruner"]["report"])
    _require(tu["cv"]["n_folds"] >= 2, "tuning.cv.n_folds", "an integer >= 2", tu["cv"]["n_folds"])
    _require(tu["cv"]["mode"] in ("expanding", "rolling"), "tuning.cv.mode", "expanding or rolling",
             tu["cv"]["mode"])
    _require(tu["cv"]["embargo_bars"] >= 0, "tuning.cv.embargo_bars", "an integer >= 0", tu["cv"]["embargo_bars"])
    mo = cfg["model"]
    _require(mo["kind"] in MODEL_KINDS, "model.kind", f"one of {list(MODEL_KINDS)}", mo["kind"])
    if mo["kind"] in ("lightgbm", "xgboost"):
        for key in ("num_boost_round", "early_stopping_rounds"):
            _require(mo[key] is not None and mo[key] >= 1, f"model.{key}", "an integer >= 1", mo[key])
    en = cfg["encoder"]
    _require(en["kind"] in ENCODER_KINDS, "encoder.kind", f"one of {list(ENCODER_KINDS)}", en["kind"])
    if en["kind"] != "none":
        _require(en["n_components"] is not None and en["n_components"] >= 1, "encoder.n_components",
                 "an integer >= 1", en["n_components"])
        _require(en["columns"] == "own", "encoder.columns", "'own' (the coins' own features)", en["columns"])
    es = cfg["ensemble"]
    _require(es["kind"] in ("auto", "average", "stacker"), "ensemble.kind", "auto, average or stacker", es["kind"])
    _require(es["top_k"] >= 2, "ensemble.top_k", "an integer >= 2 (members per ensemble)", es["top_k"])
    _require(es["C"] > 0, "ensemble.C", "a number > 0 (inverse L2 strength of the stacker)", es["C"])
    _require(es["oof_folds"] >= 2, "ensemble.oof_folds", "an integer >= 2", es["oof_folds"])


# ---- derived lists the rules expand over -------------------------------------------------------------------
def format_threshold(x: float) -> str:
    """1 -> '1.0', 1.25 -> '1.25': stable spelling for paths."""
    text = repr(float(x))
    return text


def target_id(kind: str, k: float, theta: float) -> str:
    return f"{kind}_k{format_threshold(k)}_th{format_threshold(theta)}"


def target_grid(targets_cfg: dict) -> list[dict]:
    """Every target of one window, in a stable order: [{id, type, side, k, theta}]."""
    grid = []
    for kind in targets_cfg["types"]:
        for k in targets_cfg["std_thresholds"]:
            for theta in targets_cfg["barrier_thresholds"]:
                grid.append(
                    {"id": target_id(kind, k, theta), "type": kind, "side": kind.split("_")[0], "k": float(k),
                     "theta": float(theta)}
                )
    return grid


def parse_target_id(tid: str) -> dict:
    m = re.fullmatch(r"(high|low)_(breakout|reversion)_k([0-9.]+)_th([0-9.]+)", tid)
    if not m:
        raise ValueError(f"not a target id: {tid!r} (expected like high_breakout_k1.5_th0.5)")
    return {"id": tid, "type": f"{m[1]}_{m[2]}", "side": m[1], "k": float(m[3]), "theta": float(m[4])}


def horizon_bars(window: int, targets_cfg: dict) -> int:
    return int(window) * int(targets_cfg["horizon_multiplier"])
