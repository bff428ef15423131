"""Config: Hydra composes the groups; wrong keys, types and values fail with the key named."""

import pytest

from workflow_scripts import config as swcfg
from workflow_scripts.config import ConfigError


def test_default_composition_and_groups():
    cfg = swcfg.compose([])
    assert cfg["env"]["name"] == "local-dev"
    assert cfg["universe"]["symbols"] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert len(swcfg.target_grid(cfg["targets"])) == 48
    full = swcfg.compose(["targets=full"])
    assert len(swcfg.target_grid(full["targets"])) == 120
    staged = swcfg.compose(swcfg.overrides_from_snakemake(
        {"env": "staging", "universe": "majors", "overrides": ["targets.std_thresholds=[1.5,2.0]"]}))
    assert staged["env"]["name"] == "staging" and len(staged["universe"]["symbols"]) == 8
    assert staged["targets"]["std_thresholds"] == [1.5, 2.0]


@pytest.mark.parametrize(
    "smk, expected",
    [
        ({"colour": "red"}, "unknown --config key(s) ['colour']"),
        ({"env": "moon"}, "Could not find 'env/moon'"),
        ({"overrides": ["targets.nope=1"]}, "Could not override 'targets.nope'"),
        ({"overrides": ["targets.windows=[a,b]"]}, "config key 'targets.windows[0]': Value 'a'"),
        ({"overrides": ["targets.windows=[1]"]}, "config key 'targets.windows': expected a non-empty list of integers >= 2"),
        ({"overrides": ["split.train_frac=1.5"]}, "config key 'split.train_frac'"),
        ({"overrides": ["universe.symbols=[../x]"]}, "config key 'universe.symbols[0]'"),
        ({"overrides": ["targets.types=[sideways]"]}, "config key 'targets.types'"),
    ],
    ids=["unknown-top-key", "unknown-env", "unknown-nested-key", "wrong-type", "window-too-small", "bad-fraction",
         "path-trick-symbol", "unknown-type"],
)
def test_bad_config_names_the_key(smk, expected):
    with pytest.raises(ConfigError) as err:
        swcfg.compose(swcfg.overrides_from_snakemake(smk))
    assert expected in str(err.value)


def test_target_ids_round_trip():
    for g in swcfg.target_grid(swcfg.compose([])["targets"]):
        assert swcfg.parse_target_id(g["id"]) == g
