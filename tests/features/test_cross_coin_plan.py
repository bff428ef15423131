"""Adding a coin outside the basket plans no other coin's cross-coin job (rules/common.smk
other_base_features); in all_pairs mode it replans every coin's. Real feature jobs for two coins, then a dry
run with a third coin."""

import re

import pytest

from tests.sandbox import copy_workflow
from tests.workflow.conftest import planned_jobs, snakemake

DEMO = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def config(symbols, mode):
    return [
        "env=integration-test",
        "targets=small",
        "overrides=[" + f'"universe.symbols=[{",".join(symbols)}]",'
        '"features.lookbacks=[5]",'
        f'"features.cross_coin.mode={mode}"]',
    ]


def planned_symbols(proc, rule: str) -> set[str]:
    """Symbols of the jobs of `rule` in a dry run's job list."""
    blocks = re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout + proc.stderr)
    out = set()
    for block in blocks:
        if re.match(rf"(?:local)?rule {rule}:", block.strip()):
            m = re.search(r"wildcards: .*symbol=(\w+)", block)
            out.add(m[1])
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode, replanned",
    [("basket", {"SOLUSDT"}), ("all_pairs", {"BTCUSDT", "ETHUSDT", "SOLUSDT"})],
)
def test_adding_a_coin_outside_the_basket_plans_only_its_own_features(tmp_path, mode, replanned):
    wd = copy_workflow(tmp_path / "wf", symbols=DEMO)
    two, three = config(DEMO[:2], mode), config(DEMO, mode)
    snakemake(wd, *(f"results/features/{s}.parquet" for s in DEMO[:2]), config=two)
    assert (
        planned_jobs(snakemake(wd, "-n", *(f"results/features/{s}.parquet" for s in DEMO[:2]), config=two))
        == {}
    )

    proc = snakemake(wd, "-n", *(f"results/features/{s}.parquet" for s in DEMO), config=three)
    planned = planned_jobs(proc)
    assert planned_symbols(proc, "add_cross_coin_features") == replanned
    assert planned["add_cross_coin_features"] == len(replanned)
    # the new coin's own chain only: no other coin's bars or base features
    assert planned["ingest_bars"] == planned["build_features"] == 1
    assert planned_symbols(proc, "build_features") == {"SOLUSDT"}
