"""Config: Hydra composes the groups, typed models check them; bad keys, types, values fail naming the key."""

import pytest

from workflow_scripts.config import schema as swcfg
from workflow_scripts.config.schema import ConfigError
from workflow_scripts.targets.grammar import parse_target_id, target_grid


def test_default_composition_and_groups():
    cfg = swcfg.compose([])
    assert cfg["env"]["name"] == "local-dev"
    assert cfg["universe"]["symbols"] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert len(target_grid(cfg["targets"])) == 48
    full = swcfg.compose(["targets=full"])
    assert len(target_grid(full["targets"])) == 120
    staged = swcfg.compose(
        swcfg.overrides_from_snakemake(
            {"env": "staging", "universe": "majors", "overrides": ["targets.std_thresholds=[1.5,2.0]"]}
        )
    )
    assert staged["env"]["name"] == "staging" and len(staged["universe"]["symbols"]) == 8
    assert staged["targets"]["std_thresholds"] == [1.5, 2.0]


@pytest.mark.parametrize(
    "smk, expected",
    [
        ({"colour": "red"}, "unknown --config key(s) ['colour']"),
        ({"env": "moon"}, "Could not find 'env/moon'"),
        ({"overrides": ["targets.nope=1"]}, "Could not override 'targets.nope'"),
        (
            {"overrides": ["targets.windows=[a,b]"]},
            "config key 'targets.windows[0]': expected an integer, got 'a'",
        ),
        (
            {"overrides": ["targets.windows=[1]"]},
            "config key 'targets.windows': expected a non-empty list of integers >= 2",
        ),
        ({"overrides": ["split.train_frac=1.5"]}, "config key 'split.train_frac'"),
        ({"overrides": ["universe.symbols=[../x]"]}, "config key 'universe.symbols[0]'"),
        ({"overrides": ["targets.types=[sideways]"]}, "config key 'targets.types'"),
    ],
    ids=[
        "unknown-top-key",
        "unknown-env",
        "unknown-nested-key",
        "wrong-type",
        "window-too-small",
        "bad-fraction",
        "path-trick-symbol",
        "unknown-type",
    ],
)
def test_bad_config_names_the_key(smk, expected):
    with pytest.raises(ConfigError) as err:
        swcfg.compose(swcfg.overrides_from_snakemake(smk))
    assert expected in str(err.value)


def test_target_ids_round_trip():
    for g in target_grid(swcfg.compose([])["targets"]):
        assert parse_target_id(g["id"]) == g


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (
            ["tuning.budget.trials.stage3=0"],
            "config key 'tuning.budget.trials': expected trials per study >= 1 for exactly ['stage2', "
            "'stage3', 'stage4'], got {'stage2': 5, 'stage3': 0, 'stage4': 1}",
        ),
        (
            ["tuning.budget.trials=null"],  # the trial budget binds; minutes is only a safety cap
            "config key 'tuning.budget.trials': expected a mapping, got None",
        ),
        (["split.train_frac=abc"], "config key 'split.train_frac': expected a number in (0, 1), got 'abc'"),
        (["split.validation_frac=0.5"], "config key 'split.validation_frac': expected a number in (0, 0.4)"),
        (
            ["evaluation.threshold_grid=[0.5,1.2]"],
            "config key 'evaluation.threshold_grid[1]': expected a number in [0, 1), got 1.2",
        ),
        (
            ["+env.compute.runtime_minutes.ingest_bars=0"],
            "config key 'env.compute.runtime_minutes.ingest_bars': expected an integer >= 1, got 0",
        ),
        (["tuning.sampler=grid"], "config key 'tuning.sampler': expected 'tpe' or 'random', got 'grid'"),
        (["+targets.nope=1"], "config key 'targets.nope': unknown key; allowed here: name, windows, types"),
        (["~env.require_provenance"], "config key 'env.require_provenance': missing"),
        (
            ["model.kind=catboost"],
            "config key 'model.kind': expected one of 'lightgbm', 'xgboost', 'torch_mlp'",
        ),
        # model, encoder: shaped by `kind`; another kind's key is unknown, this kind's key is missing
        (
            ["+model.seq_len=8"],
            "config key 'model.seq_len': unknown key; allowed here: name, kind, num_boost_round",
        ),
        (["model.kind=torch_mlp"], "config key 'model.seq_len': missing"),
        (["encoder.kind=pca"], "config key 'encoder.n_components': missing"),
        (
            ["encoder=autoencoder", "encoder.params.lr=0"],
            "config key 'encoder.params.lr': expected a number > 0, got 0",
        ),
        (
            ["model=torch_mlp", "model.amp=on"],
            "config key 'model.amp': expected 'auto', 'bf16', 'fp16' or 'off'",
        ),
        (["grades.table=[[S,0.1],[A,0.2]]"], "config key 'grades.table': expected [grade, cut-off] rows"),
        (["features.lookbacks=[1]"], "config key 'features': expected a features spec"),
    ],
)
def test_typed_models_name_the_key_and_what_is_allowed(overrides, expected):
    with pytest.raises(ConfigError) as err:
        swcfg.compose(overrides)
    assert expected in str(err.value)


def test_every_error_is_one_line():
    with pytest.raises(ConfigError) as err:
        swcfg.compose(["targets.windows=[a,b]", "split.train_frac=2"])
    assert str(err.value).splitlines() == [
        "config key 'targets.windows[0]': expected an integer, got 'a'",
        "config key 'targets.windows[1]': expected an integer, got 'b'",
        "config key 'split.train_frac': expected a number in (0, 1), got 2",
    ]


def test_every_option_of_every_group_composes_and_kinds_have_one_file_each():
    for group in swcfg.GROUPS:
        for option in sorted((swcfg.CONFIG_DIR / group).glob("*.yaml")):
            swcfg.compose([f"{group}={option.stem}"])
    from typing import get_args

    fields = swcfg.WorkflowConfig.model_fields
    for group, kinds in (("model", swcfg.MODEL_KINDS), ("encoder", swcfg.ENCODER_KINDS)):
        assert sorted(p.stem for p in (swcfg.CONFIG_DIR / group).glob("*.yaml")) == sorted(kinds)
        members = get_args(fields[group].annotation)
        tags = [t for m in members for t in get_args(m.model_fields["kind"].annotation)]
        assert tags == list(kinds)  # the union's kinds are MODEL_KINDS / ENCODER_KINDS, in their order


def test_composed_config_is_plain_and_holds_only_the_keys_of_its_kinds():
    cfg = swcfg.compose([])
    assert type(cfg) is dict and all(type(cfg[g]) is dict for g in swcfg.GROUPS)
    assert list(cfg) == list(swcfg.GROUPS)
    assert cfg["model"]["kind"] == "lightgbm" and not {"seq_len", "xgboost_base"} & set(cfg["model"])
    assert cfg["encoder"] == {"name": "none", "kind": "none"}
    assert "num_threads" not in cfg["tuning"] and "num_threads" not in cfg["model"]  # read by nobody: removed
    # The YAML types win where the schema says float: an integer in YAML or an override reads as a float.
    assert cfg["tuning"]["stale_after_s"] == 3600.0 and type(cfg["tuning"]["stale_after_s"]) is float
    assert type(swcfg.compose(["tuning.budget.minutes=600"])["tuning"]["budget"]["minutes"]) is float
    torch = swcfg.compose(["model=torch_mlp"])["model"]
    assert torch["seq_len"] == 8 and "num_boost_round" not in torch


def test_schema_declares_no_defaults():
    """Defaults live in the YAML only (docs/CONFIG.md): no field of the typed models has one."""
    from pydantic import BaseModel

    from workflow_scripts.config import models

    seen = [m for m in vars(models).values() if isinstance(m, type) and issubclass(m, BaseModel)]
    assert len(seen) > 20
    for model in seen:
        for name, field in model.model_fields.items():
            assert field.is_required(), f"{model.__name__}.{name} has a default"
