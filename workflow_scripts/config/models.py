"""The typed schema of the composed config: one pydantic model per config group (docs/CONFIG.md).

The models declare types, choices and bounds, never defaults: every value comes from the YAML under `config/`
(Hydra's home), so a key missing there is an error here, not a silent second default. Unknown keys are errors
too (extra="forbid"). `model` and `encoder` take a shape by their `kind` (discriminated unions).
Checks that span keys or groups are validators of the model that owns the key they name.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from workflow_scripts.evaluation.costs import ConfigCostProvider
from workflow_scripts.evaluation.grades import BASES, INSUFFICIENT
from workflow_scripts.features import validate_spec
from workflow_scripts.targets.grammar import TARGET_TYPES

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
ENCODER_KINDS = ("none", "pca", "autoencoder")
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,20}$")
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}"
TUNING_STAGES = ("stage1", "stage2", "stage3", "stage4")

# Field(gt/ge/lt/le) bounds used more than once
Fraction = Annotated[float, Field(gt=0, le=1)]  # (0, 1]
Probability = Annotated[float, Field(ge=0, lt=1)]  # [0, 1)
PositiveInt = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]
Params = dict[str, Any]  # library parameters, passed through as they are


def check(ok: bool, expected: str) -> None:
    """Inside a validator: fail with `expected` (what is allowed) unless `ok`."""
    if not ok:
        raise ValueError(expected)


def _symbol(value: str) -> str:
    check(bool(SYMBOL_PATTERN.match(value)), "upper-case letters/digits like BTCUSDT")
    return value


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- env ---------------------------------------------------------------------------------------------------
class DataSpan(Group):
    raw_dir: str
    start: str | None = Field(pattern=DATE_PATTERN)
    end: str | None = Field(pattern=DATE_PATTERN)


class Compute(Group):
    threads_per_job: PositiveInt
    device: str
    # Minutes a job may run on its first attempt, per rule; each retry gets attempt x that (rules/common.smk).
    runtime_minutes: dict[str, PositiveInt]


class Storage(Group):
    registry_dir: str
    dvc_remote: str


class Notifications(Group):
    telegram: bool
    webhook_url_env: str | None


class EnvConfig(Group):
    name: str
    data: DataSpan
    compute: Compute
    storage: Storage
    notifications: Notifications
    tracking: Literal["none", "mlflow"]
    require_provenance: bool  # workflow_scripts/ops/provenance.py


# ---- data, targets, features, split ------------------------------------------------------------------------
class UniverseConfig(Group):
    name: str
    symbols: list[Annotated[str, AfterValidator(_symbol)]]

    @field_validator("symbols")
    @classmethod
    def _distinct(cls, v):
        check(len(v) > 0 and len(set(v)) == len(v), "a non-empty list of distinct symbols")
        return v


class IngestCheck(Group):
    action: Literal["warn", "stop"]  # warn: record and go on; stop: the ingest job fails, writes nothing


class JumpCheck(IngestCheck):
    window_bars: int = Field(ge=24)
    min_history_bars: PositiveInt
    max_sigmas: float = Field(gt=0)
    min_sigma: float = Field(gt=0)

    @field_validator("min_history_bars")
    @classmethod
    def _history_fits_window(cls, v, info: ValidationInfo):
        window = info.data.get("window_bars")
        check(window is None or v <= window, f"an integer in [1, window_bars = {window}]")
        return v


class ScaleCheck(IngestCheck):
    min_factor: float = Field(gt=1)
    max_bars: PositiveInt
    revert_tolerance: float = Field(gt=0, lt=1)


class FlatCheck(IngestCheck):
    min_bars: int = Field(ge=2)


class EndingCheck(IngestCheck):
    max_bars: Count
    flat_bars: int = Field(ge=2)


class IngestConfig(Group):
    """What ingest reads besides the span: its own minimum history and the data-quality checks
    (workflow_scripts/data/quality.py); nothing derived from the target windows."""

    name: str
    min_bars: PositiveInt
    jump: JumpCheck
    scale: ScaleCheck
    flat: FlatCheck
    ending: EndingCheck


class TargetsConfig(Group):
    name: str
    windows: list[int]
    types: list[str]
    std_thresholds: list[float]
    barrier_thresholds: list[float]
    horizon_multiplier: PositiveInt
    sigma_min_bars: int = Field(ge=2)

    @field_validator("windows")
    @classmethod
    def _windows(cls, v):
        check(
            len(v) > 0 and all(w >= 2 for w in v) and len(set(v)) == len(v),
            "a non-empty list of integers >= 2 (bars), no duplicates",
        )
        return v

    @field_validator("types")
    @classmethod
    def _types(cls, v):
        check(len(v) > 0 and set(v) <= set(TARGET_TYPES), f"a non-empty subset of {list(TARGET_TYPES)}")
        return v

    @field_validator("std_thresholds", "barrier_thresholds")
    @classmethod
    def _thresholds(cls, v):
        check(
            len(v) > 0 and all(x > 0 for x in v) and len(set(v)) == len(v),
            "a non-empty list of numbers > 0, no duplicates",
        )
        return v


class CrossCoinConfig(Group):
    """features.cross_coin (workflow_scripts/features/cross_coin.py). That basket coins are universe coins
    is checked when add_cross_coin_features is planned (rules/common.smk other_base_features), so a run that
    never builds cross-coin tables does not need them."""

    mode: Literal["basket", "all_pairs"]
    basket: list[Annotated[str, AfterValidator(_symbol)]]
    columns: Literal["all"] | list[str]
    factors: list[Literal["mean", "dispersion", "relative"]]
    factor_inputs: list[str]


class FeaturesConfig(Group):
    families: list[str]
    lookbacks: list[int]
    lags: list[int]
    dtype: str
    cross_coin: CrossCoinConfig

    @model_validator(mode="after")
    def _spec(self):

        try:
            validate_spec(self.model_dump())
        except ValueError as exc:
            raise ValueError(f"a features spec that workflow_scripts/features accepts ({exc})") from None
        return self


class SplitConfig(Group):
    name: str
    train_frac: float = Field(gt=0, lt=1)
    validation_frac: float = Field(gt=0, lt=1)
    embargo_bars: Count

    @field_validator("validation_frac")
    @classmethod
    def _test_remains(cls, v, info: ValidationInfo):
        train = info.data.get("train_frac")
        if train is not None:
            check(v < 1 - train, f"a number in (0, {1 - train:.3g}) so that a test segment remains")
        return v


# ---- selection, stage 1 ------------------------------------------------------------------------------------
class ScreeningConfig(Group):
    name: str
    max_missing_frac: Fraction
    max_nan_frac: Fraction
    min_variance: float = Field(ge=0)
    max_same_value_frac: Fraction
    max_abs_corr: Fraction
    corr_block_size: PositiveInt


class SelectionConfig(Group):
    name: str
    subsample_rows: int = Field(ge=100)
    val_frac: float = Field(gt=0, lt=1)
    num_boost_round: PositiveInt
    early_stopping_rounds: PositiveInt
    top_k: PositiveInt
    keep_min: PositiveInt
    keep_max: PositiveInt
    score_coverage: Fraction
    seed: int
    params: Params

    @field_validator("keep_max")
    @classmethod
    def _range(cls, v, info: ValidationInfo):
        keep_min = info.data.get("keep_min")
        if keep_min is not None:
            check(v >= keep_min, f"an integer >= selection.keep_min ({keep_min})")
        return v


class Stage1Config(Group):
    name: str
    num_boost_round: PositiveInt
    early_stopping_rounds: PositiveInt
    params: Params
    min_train_rows: PositiveInt
    min_class_rows: PositiveInt


# ---- evaluation --------------------------------------------------------------------------------------------
class CostsConfig(Group):
    """Shape only; the entries are checked against the universe by WorkflowConfig (evaluation/costs.py)."""

    name: str
    source: str
    default: dict[str, Any] | None
    symbols: dict[str, dict[str, Any]]


class EvaluationConfig(Group):
    name: str
    allow_short: bool
    allow_overlap: bool
    position_size: Fraction
    threshold_grid: list[Probability] = Field(min_length=1)
    threshold_min_trades: Count
    fallback_threshold: Probability


class GatesConfig(Group):
    """The bounds of evaluation/gates.py validate_profile."""

    name: str
    label: str
    min_trades: Count
    min_dsr: Probability
    max_drawdown: Fraction
    min_net_return: float


def _grade_row(row: list) -> list:
    check(isinstance(row[0], str) and isinstance(row[1], int | float), "[grade, cut-off], e.g. [A, 0.2]")
    return row


GradeRow = Annotated[list[str | int | float], Field(min_length=2, max_length=2), AfterValidator(_grade_row)]


class GradesConfig(Group):
    name: str
    basis: Literal[tuple(BASES)]
    method: Literal["absolute", "percentile"]
    table: list[GradeRow]
    fail_grade: str
    percentile_scale: list[GradeRow]
    min_trades: PositiveInt  # after-cost trades a grade needs; fewer -> 'N' (insufficient evidence)

    @field_validator("table", "percentile_scale")
    @classmethod
    def _descending(cls, v):
        check(all(a[1] > b[1] for a, b in pairwise(v)), "[grade, cut-off] rows, cut-offs strictly descending")
        return v

    @field_validator("table", "percentile_scale", "fail_grade")
    @classmethod
    def _not_insufficient(cls, v):
        names = [v] if isinstance(v, str) else [row[0] for row in v]
        check(INSUFFICIENT not in names, f"grade names other than {INSUFFICIENT!r} (insufficient evidence)")
        return v


class RegistryCompare(Group):
    alpha: float = Field(gt=0, lt=1)
    min_bars: PositiveInt
    min_trades: PositiveInt


class RegistryDemotion(Group):
    min_bars: PositiveInt
    min_trades: PositiveInt
    sharpe_floor: float


class RegistryConfig(Group):
    name: str
    compare: RegistryCompare
    demotion: RegistryDemotion
    promote_gate_profiles: list[str]

    @field_validator("promote_gate_profiles")
    @classmethod
    def _known_profiles(cls, v, info: ValidationInfo):
        config_dir = Path((info.context or {}).get("config_dir", CONFIG_DIR))
        profiles = sorted(p.stem for p in (config_dir / "gates").glob("*.yaml"))
        check(set(v) <= set(profiles), f"gate profile names from {profiles}")
        return v


# ---- tuning ------------------------------------------------------------------------------------------------
class TuningBudget(Group):
    """Per study: `trials` ({stage: finished trials}) binds (reproducible tuning); `minutes` is only a
    wall-clock safety cap on one run of a study (null: none)."""

    trials: dict[str, int]
    minutes: float | None = Field(gt=0)

    @field_validator("trials")
    @classmethod
    def _trials(cls, v):
        check(
            sorted(v) == sorted(TUNING_STAGES[1:]) and all(isinstance(x, int) and x >= 1 for x in v.values()),
            f"trials per study >= 1 for exactly {list(TUNING_STAGES[1:])}",
        )
        return v


class TuningPruner(Group):
    kind: Literal["median", "successive_halving", "none"]
    report: Literal["fold", "iteration"]
    n_startup_trials: Count
    n_warmup_steps: Count
    interval_steps: PositiveInt


class TuningCV(Group):
    n_folds: int = Field(ge=2)
    mode: Literal["expanding", "rolling"]
    embargo_bars: Count
    min_train_rows: PositiveInt
    train_size: int | None = Field(ge=1)


class TuningConfig(Group):
    name: str
    budget: TuningBudget
    early_stopping_rounds: dict[str, int]
    max_rounds: PositiveInt
    representative_rule: Literal["best_validation_ap", "most_rows", "median_ap"]
    representative_symbols: list[str]
    space: dict[str, list[Any]]
    focus_radius: float = Field(gt=0, lt=1)
    fixed: Params
    seed: int
    sampler: Literal["tpe", "random"]
    pruner: TuningPruner
    report_every: PositiveInt
    stale_after_s: float = Field(gt=0)
    cv: TuningCV

    @field_validator("early_stopping_rounds")
    @classmethod
    def _rounds(cls, v):
        check(
            sorted(v) == list(TUNING_STAGES[1:]) and all(x >= 1 for x in v.values()),
            f"integers >= 1 for exactly {list(TUNING_STAGES[1:])}",
        )
        return v

    @field_validator("space")
    @classmethod
    def _space(cls, v):
        check(len(v) > 0 and all(len(x) > 0 for x in v.values()), "a non-empty list of values per parameter")
        return v


# ---- heads: model (by kind), encoder (by kind), ensemble ---------------------------------------------------
class LightgbmModel(Group):
    """Tree head (models/heads.py); `params` merged under the tuned parameters."""

    name: str
    kind: Literal["lightgbm"]
    num_boost_round: PositiveInt
    early_stopping_rounds: PositiveInt
    seed: int
    params: Params


class XgboostModel(LightgbmModel):
    kind: Literal["xgboost"]
    xgboost_base: Params  # native XGBoost parameters underneath the translated ones


class TorchModel(Group):
    """Neural head (models/torch_models.py TorchModelConfig.from_config); `params` shape the network."""

    name: str
    kind: Literal["torch_mlp", "torch_transformer"]
    seed: int
    seq_len: PositiveInt
    max_epochs: PositiveInt
    early_stopping_patience: PositiveInt
    batch_size: PositiveInt
    gpu_batch_size: PositiveInt
    min_batch_size: PositiveInt
    eval_batch_size: PositiveInt
    device: str = Field(pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    amp: Literal["auto", "bf16", "fp16", "off"]
    compile: Literal["auto", "on", "off"]
    deterministic: bool
    num_workers: Count
    cpu_fallback: bool
    params: Params


class NoEncoder(Group):
    name: str
    kind: Literal["none"]


class PcaEncoder(Group):
    """models/shared_encoder.py: fitted on the pooled training rows of all coins."""

    name: str
    kind: Literal["pca"]
    n_components: PositiveInt
    columns: Literal["own"]  # the coins' own features
    prefix: str


class AutoencoderParams(Group):
    hidden: list[PositiveInt] = Field(min_length=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    batch_size: PositiveInt
    max_epochs: PositiveInt
    patience: PositiveInt
    holdout_every: int = Field(ge=2)


class AutoencoderEncoder(PcaEncoder):
    """models/autoencoder_encoder.py AutoencoderConfig.from_config."""

    kind: Literal["autoencoder"]
    seed: int
    num_threads: PositiveInt
    params: AutoencoderParams


class EnsembleConfig(Group):
    name: str
    enabled: bool
    kind: Literal["auto", "average", "stacker"]
    top_k: int = Field(ge=2)  # members per ensemble
    C: float = Field(gt=0)  # inverse L2 strength of the stacker
    oof_folds: int = Field(ge=2)


class AgentStudy(Group):
    trials: int | None = Field(ge=1)
    minutes: float | None = Field(gt=0)
    seed: int
    sampler: Literal["tpe", "random"]
    objective: Literal["sharpe_per_trade", "sharpe", "sortino", "total_return"]
    min_trades: Count
    stale_after_s: float = Field(gt=0)

    @model_validator(mode="after")
    def _some_budget(self):
        check(self.trials is not None or self.minutes is not None, "trials and/or minutes, not both null")
        return self


AGENT_SPACE_KEYS = ("net_width", "batch_size", "learning_rate", "gamma", "lookback", "time_decay")


class AgentEnsemble(Group):
    enabled: bool
    max_members: PositiveInt
    methods: list[Literal["positions", "probabilities"]] = Field(min_length=1)


class AgentHybrid(Group):
    enabled: bool
    kind: Literal["ppo", "sac", "td3"]
    fit_share: float = Field(gt=0, lt=1)  # of the validation segment: the hybrid's training bars


class AgentsConfig(Group):
    """The RL line (docs/AGENTS.md). `cnn_lstm`, `env` and `agent` are checked by the agents package's own
    `from_mapping` in the job (naming a bad key), so validating the config does not import torch or SB3."""

    name: str
    enabled: bool
    kinds: list[Literal["ppo", "sac", "td3"]]
    window: PositiveInt
    sigma_bars: PositiveInt
    seed: int
    cnn_lstm: Params
    env: Params
    agent: Params
    study: AgentStudy
    space: dict[str, dict[str, Any]]
    ensemble: AgentEnsemble
    hybrid: AgentHybrid
    archive_top_percent: float = Field(gt=0, le=100)

    @model_validator(mode="after")
    def _kinds_and_space(self):
        check(not self.enabled or bool(self.kinds), "kinds: at least one of ppo, sac, td3 when enabled")
        unknown = sorted(set(self.space) - set(AGENT_SPACE_KEYS))
        check(not unknown, f"space: unknown parameter(s) {unknown}; allowed: {list(AGENT_SPACE_KEYS)}")
        return self


ModelConfig = Annotated[LightgbmModel | XgboostModel | TorchModel, Field(discriminator="kind")]
EncoderConfig = Annotated[NoEncoder | PcaEncoder | AutoencoderEncoder, Field(discriminator="kind")]


class WorkflowConfig(Group):
    """The whole composed config; the field order is the group order of `--config` (schema.GROUPS)."""

    env: EnvConfig
    universe: UniverseConfig
    ingest: IngestConfig
    targets: TargetsConfig
    features: FeaturesConfig
    split: SplitConfig
    screening: ScreeningConfig
    selection: SelectionConfig
    stage1: Stage1Config
    costs: CostsConfig
    evaluation: EvaluationConfig
    gates: GatesConfig
    grades: GradesConfig
    registry: RegistryConfig
    tuning: TuningConfig
    model: ModelConfig
    encoder: EncoderConfig
    ensemble: EnsembleConfig
    agents: AgentsConfig

    @field_validator("costs")
    @classmethod
    def _costs_for_every_symbol(cls, v, info: ValidationInfo):

        try:
            provider = ConfigCostProvider(v.model_dump())
            for sym in info.data["universe"].symbols if "universe" in info.data else []:
                provider.costs_for(sym)
        except ValueError as exc:
            raise ValueError(f"a cost table that prices every symbol of the universe ({exc})") from None
        return v

    @field_validator("agents")
    @classmethod
    def _agent_window_is_a_target_window(cls, v, info: ValidationInfo):
        windows = info.data["targets"].windows if "targets" in info.data else [v.window]
        check(
            not v.enabled or v.window in windows,
            f"agents.window one of targets.windows {list(windows)}, got {v.window}",
        )
        return v
