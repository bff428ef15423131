"""Hundreds of coins (docs/SCALE.md): the synthetic universe of benchmarks/scale.py, the cluster plan of a
Slurm run (tiny aggregate jobs are local, model fitting holds `heavy` for the hybrid mode), the symbol
constraint, and the champion summaries of the dashboard and `swingflow champions`."""

from __future__ import annotations

import json
import re
import shlex

import numpy as np
import pandas as pd
import pytest

from benchmarks import scale
from tests.sandbox import copy_workflow, run_snakemake
from workflow_scripts.config.schema import config_group
from workflow_scripts.data import quality
from workflow_scripts.registry import dashboard
from workflow_scripts.targets.grammar import horizon_bars

# The jobs that take seconds and multiply with the universe (per coin, window or side) or summarise it: in a
# cluster run they run in the Snakemake process's host (docs/OPERATIONS.md, "Scheduler modes").
TINY = {
    "snapshot_costs",
    "split_segments",
    "aggregate_selection",
    "aggregate_selection_overall",
    "pick_best_variant",
    "report_best_variant",
    "plot_best_variant",
    "summarize_symbol",
    "summarize_best_variants",
    "summarize_evaluation",
    "summarize_production",
    "render_report",
}
# What a Slurm run submits: the jobs that read or fit enough to be worth an allocation. A new rule fails this
# test until it is placed on one side or the other.
CLUSTER = {
    "write_resolved_config",
    "ingest_bars",
    "build_features",
    "add_cross_coin_features",
    "build_swing_targets",
    "screen_features",
    "select_features",
    "train_stage1",
    "evaluate_stage1",
    "tune_stage2",
    "tune_stage3",
    "tune_stage4",
    "fit_production",
    "evaluate_production",
    "register_models",
    "predict_batch",
    "paper_trade",
}
HEAVY = {"train_stage1", "tune_stage2", "tune_stage3", "tune_stage4", "fit_production"}  # of the default plan
TINY_PLAN = ["env=integration-test", "universe=tiny", "targets=small"]


# ---- the synthetic universe --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wide() -> dict[str, pd.DataFrame]:
    return scale.read_wide()


def test_the_universe_is_the_real_basket_then_synthetic_coins_a_prefix_of_any_larger_one():
    assert scale.universe_symbols(5) == ["BTCUSDT", "ETHUSDT", "S0001USDT", "S0002USDT", "S0003USDT"]
    assert scale.universe_symbols(400)[:50] == scale.universe_symbols(50)
    assert len(set(scale.universe_symbols(400))) == 400


def test_listing_dates_spread_over_the_span_for_any_size():
    for n in (50, 400):
        u = np.array([scale.listing_fraction(i) for i in range(1, n + 1)])
        assert u.min() >= 0.0 and u.max() <= scale.LAST_LISTING
        counts, _ = np.histogram(u, bins=5, range=(0.0, scale.LAST_LISTING))
        assert counts.min() >= 0.8 * n / 5 and counts.max() <= 1.2 * n / 5, counts


def test_the_stationary_bootstrap_copies_blocks_of_the_mean_length():
    rng = np.random.default_rng(0)
    idx = scale.stationary_bootstrap(1000, 100_000, 50, rng)
    assert idx.min() >= 0 and idx.max() < 1000 and len(idx) == 100_000
    breaks = np.count_nonzero(np.diff(idx) % 1000 != 1)  # a new block (a wrap 999 -> 0 continues one)
    assert 100_000 / 50 * 0.9 < breaks < 100_000 / 50 * 1.1


def test_a_synthetic_coin_is_reproducible_plausible_and_passes_ingest(wide):
    span = pd.date_range("2021-01-01", periods=6000, freq="1h", tz="UTC")
    a = scale.synthesize(wide["SOLUSDT"], span, np.random.default_rng(scale.SEED + 7))
    b = scale.synthesize(wide["SOLUSDT"], span, np.random.default_rng(scale.SEED + 7))
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    assert (a[["open", "high", "low", "close"]] > 0).all().all()
    assert (a["high"] >= a[["open", "close"]].max(axis=1)).all()
    assert (a["low"] <= a[["open", "close"]].min(axis=1)).all()
    ret = np.diff(np.log(a["close"].to_numpy()))
    assert np.abs(ret).max() <= scale.MAX_RETURN + 1e-12
    real = np.diff(np.log(wide["SOLUSDT"]["close"].to_numpy()))
    assert 0.5 < ret.std() / np.clip(real, -scale.MAX_RETURN, scale.MAX_RETURN).std() < 2.0
    assert quality.scale_findings(a, "S0007USDT", config_group("ingest")["scale"]) == []


def test_write_universe_writes_raw_files_ingest_reads(tmp_path, wide):
    from workflow_scripts.data.ingest import find_raw_file

    facts = scale.write_universe(tmp_path, 4, wide)
    assert facts["coins"] == 4 and facts["bars"] > 4 * 5000
    bars = pd.read_parquet(find_raw_file(tmp_path, "S0002USDT"))
    assert str(bars["timestamp"].dtype) == "datetime64[ns, UTC]" and bars["timestamp"].is_monotonic_increasing
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "BTCUSDT_1h.parquet"), wide["BTCUSDT"])


def test_job_stats_and_the_cluster_count():
    text = "x\nJob stats:\njob      count\n-----  -------\npick_best_variant   24\ntrain_stage1  6\nall 1\n"
    text += "total 31\n\nJob stats:\nother 9\n"
    jobs = scale.job_stats(text)
    assert jobs == {"pick_best_variant": 24, "train_stage1": 6, "all": 1}
    assert scale.job_stats("Nothing to be done.") == {}
    sub = scale.submitted(jobs, {"pick_best_variant", "all"})
    assert (sub["cluster"], sub["local"], sub["cluster_rules"]) == (6, 25, {"train_stage1": 6})


def test_local_rules_reads_both_forms_and_refuses_an_unknown_name(tmp_path):
    (tmp_path / "a.smk").write_text("localrules: one, two\n\n\nrule one:\n    shell: 'x'\n\n\nrule two:\n")
    (tmp_path / "b.smk").write_text("localrules:\n    three,\n\n\nrule three:\n    shell: 'x'\n")
    assert scale.local_rules(tmp_path) == {"one", "two", "three", "all"}
    (tmp_path / "c.smk").write_text("localrules:\n    tree,\n")
    with pytest.raises(ValueError, match=r"localrules names no rule: \['tree'\]"):
        scale.local_rules(tmp_path)


# ---- the plan through the Slurm profile (dry run) ----------------------------------------------------------
@pytest.fixture(scope="module")
def slurm_plan(tmp_path_factory):
    """A dry run of the whole workflow for two coins through profiles/slurm, jobs printed with resources."""
    wf = copy_workflow(tmp_path_factory.mktemp("scale") / "wf")
    proc = run_snakemake(wf, "-n", "--profile", "profiles/slurm", config=TINY_PLAN, timeout=600)
    return wf, proc.stdout + proc.stderr


def test_tiny_aggregate_jobs_are_local_and_only_real_work_goes_to_slurm(slurm_plan):
    wf, out = slurm_plan
    jobs = scale.job_stats(out)
    local = scale.local_rules(wf / "rules")
    assert TINY <= set(jobs), TINY - set(jobs)  # planned...
    assert TINY <= local, TINY - local  # ...and local
    assert set(scale.submitted(jobs, local)["cluster_rules"]) == CLUSTER
    assert "Group job" not in out  # no rule is grouped: one cluster job per submitted job


def test_model_fitting_jobs_hold_heavy_and_tiny_ones_do_not(slurm_plan):
    _, out = slurm_plan
    resources = {}
    for rule, res in re.findall(r"^rule (\w+):\n(?:(?!^rule ).*\n)*?\s+resources: (.*)$", out, flags=re.M):
        resources.setdefault(rule, set()).add("heavy=1" in res.split(", "))
    assert all(resources[r] == {True} for r in HEAVY), {r: resources.get(r) for r in HEAVY}
    assert all(resources[r] == {False} for r in TINY & set(resources)), resources


def test_the_symbol_constraint_names_universe_symbols_only(slurm_plan):
    # rules/common.smk `alternation` factors the symbols into a trie: a prefix of a symbol is not a symbol
    wf, out = slurm_plan
    assert "results/features/ETHUSDT.parquet" in out
    r = run_snakemake(wf, "-n", "results/features/ETHUSD.parquet", config=TINY_PLAN, check=False, timeout=300)
    assert r.returncode != 0 and "MissingRuleException" in r.stdout + r.stderr


def test_a_manifest_is_the_canonical_json_of_the_job(tmp_path):
    # rules/common.smk `job` writes a rule's fixed params once and joins the manifest from pieces: the text
    # must be as_json's (sorted keys, no spaces) of the whole manifest, with the per-job params of each job
    wf = copy_workflow(tmp_path / "wf")
    targets = [f"results/splits/{s}/w{w}.json" for s in ("BTCUSDT", "ETHUSDT") for w in (5, 20)]
    out = run_snakemake(wf, "-n", "-p", *targets, config=TINY_PLAN, timeout=300).stdout
    manifests = [
        words[words.index("workflow_scripts.job") + 1]
        for words in map(shlex.split, out.splitlines())
        if "workflow_scripts.job" in words
    ]
    jobs = [json.loads(m) for m in manifests]
    assert [m == json.dumps(j, sort_keys=True, separators=(",", ":")) for m, j in zip(manifests, jobs)] == [
        True
    ] * len(jobs)
    assert sorted(j["entry"] for j in jobs) == ["data.ingest_bars"] * 2 + ["data.split_segments"] * 4
    targets_cfg = config_group("targets", "small")
    for j in jobs:
        assert set(j) == {"entry", "input", "output", "params", "threads", "wildcards"}
        if j["entry"] == "data.split_segments":  # a per-job slice: the window's horizon
            w = int(j["wildcards"]["window"])
            assert j["params"]["spec"]["horizon"] == horizon_bars(w, targets_cfg)
            assert j["output"]["split"] == f"results/splits/{j['wildcards']['symbol']}/w{w}.json"
        else:  # fixed params: the same for every coin
            assert j["params"]["spec"]["min_bars"] == config_group("ingest")["min_bars"]


# ---- the registry at scale: the champions a frame lists ----------------------------------------------------
def champion(symbol, side, grade, score):
    return {"symbol": symbol, "side": side, "grade": grade, "score": score, "vin": f"{symbol}{side}"}


def test_the_champion_summary_counts_every_champion_per_grade():
    champs = [
        champion(f"C{i}USDT", s, g, 0.5) for i, g in enumerate(["A", "B", "A", "F"]) for s in ("high", "low")
    ]
    champs.append(champion("XUSDT", "high", None, None))
    assert dashboard.grade_summary(champs) == "9 champion(s) of 5 symbol(s): A 4, B 2, F 2, - 1"
    assert dashboard.grade_summary([]) == "0 champion(s) of 0 symbol(s)"


def test_the_champion_view_lists_the_best_first_and_filters_a_symbol():
    champs = [
        champion("AUSDT", "high", "B", 0.9),
        champion("BUSDT", "high", "A", 0.2),
        champion("BUSDT", "low", "A", 0.7),
        champion("CUSDT", "low", None, 0.99),
        champion("AUSDT", "low", "S", 0.1),
    ]
    best = [(c["symbol"], c["side"]) for c in dashboard.champion_view(champs, top=3)]
    assert best == [("AUSDT", "low"), ("BUSDT", "low"), ("BUSDT", "high")]
    assert len(dashboard.champion_view(champs)) == 5 and len(dashboard.champion_view(champs, top=0)) == 5
    assert [c["side"] for c in dashboard.champion_view(champs, symbol="BUSDT")] == ["low", "high"]


def test_a_frame_of_800_champions_lists_the_top_and_counts_all(tmp_path):
    from rich.console import Console

    grades = list(dashboard.GRADE_STYLE)
    slots = [(s, side) for s in scale.universe_symbols(400) for side in ("high", "low")]
    champs = [champion(s, side, grades[i % len(grades)], i / 800) for i, (s, side) in enumerate(slots)]
    for c in champs:
        c |= {"version": "1.0.0", "since": "2026-01-01", "challengers": 0, "previous": 0}
    snap = {
        "progress": [],
        "last_run": None,
        "recent": [],
        "models": 800,
        "champions": champs,
        "deployed": [],
    }
    console = Console(width=200, record=True)
    console.print(dashboard.render(snap, tmp_path, top=20))
    text = console.export_text()
    listed = [c["vin"] for c in champs if c["vin"] in text]
    assert len(listed) == 20
    assert "800 champion(s) of 400 symbol(s): S 80, A+ 80" in text and "listed: the 20 best" in text
    assert len(text.splitlines()) < 80
