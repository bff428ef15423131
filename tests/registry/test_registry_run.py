"""Rule register_models' logic (workflow_scripts.registry.runs) and predict_batch's
(predictions.batch_from_file) on a workflow-like run: real bars, the workflow's feature/target/split code,
production folders from heads."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.registry.conftest import OTHER, SYMBOL, WF_SPEC
from workflow_scripts import artifacts
from workflow_scripts.lifecycle import compare as cmp
from workflow_scripts.models.folder import write_sha256
from workflow_scripts.registry import predictions as pr
from workflow_scripts.registry import runs as rr
from workflow_scripts.registry import store as reg


def _files(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def run1(workflow_like):
    """Run 1: every (symbol, window, side) of the tiny grid, one failing the gate, one exploratory pass."""
    wl = workflow_like
    folders = [
        wl.production(s, w, side)
        for s in (SYMBOL, OTHER)
        for w in (5, 20)
        for side in ("high", "low")
        if (s, w, side) not in {(OTHER, 20, "low"), (OTHER, 5, "low")}
    ]
    folders.append(wl.production(OTHER, 5, "low", gate_passed=False, grade="F"))
    folders.append(wl.production(OTHER, 20, "low", profile="exploratory"))
    return folders


def test_run_id_is_deterministic_and_order_free(run1, tmp_path):
    hashes = [reg.verify_folder(f) for f in run1]
    assert rr.run_id(hashes) == rr.run_id(hashes[::-1])
    assert rr.run_id(hashes).startswith("run-") and len(rr.run_id(hashes)) == 16
    assert rr.run_id(hashes[:-1]) != rr.run_id(hashes)
    retimed = [{**hashes[0], "training_log.json": "0" * 64}, *hashes[1:]]  # fit timings differ: same run
    assert rr.run_id(retimed) == rr.run_id(hashes)
    assert rr.run_id([{**hashes[0], "metrics.json": "0" * 64}, *hashes[1:]]) != rr.run_id(hashes)


def test_first_run_registers_promotes_best_and_records(run1, workflow_like, tmp_path):
    registry_dir = tmp_path / "registry"
    status, roster = rr.register_run(registry_dir, run1, workflow_like.paths(), WF_SPEC)
    run = status["run"]
    index = reg.read_index(registry_dir)
    assert len(index["models"]) == len(run1) and all(e["run"] == run for e in index["models"].values())
    assert set(status) == {"run", "symbols"} and set(status["symbols"]) == {SYMBOL, OTHER}
    for sym, s in status["symbols"].items():
        assert set(s) == {"registered", "champion", "changed"} and s["changed"] is True
        assert sorted(s["registered"]) == s["registered"]
        assert set(s["registered"]) == {e["vin"] for e in index["models"].values() if e["symbol"] == sym}
    # BTCUSDT: both windows eligible per side; the champion is the best on the validation bars common to
    # both (annualised Sharpe of per-bar after-cost returns); the other is a challenger, with the reason
    champions = reg.read_champions(registry_dir, SYMBOL)["sides"]
    assert set(status["symbols"][SYMBOL]["champion"]) == {"high", "low"}
    for side in ("high", "low"):
        vins = [e["vin"] for e in index["models"].values() if e["symbol"] == SYMBOL and e["side"] == side]
        best = rr.first_registration_order({v: reg.load_evidence(registry_dir, v) for v in vins})[0]
        assert status["symbols"][SYMBOL]["champion"][side] == best
        loser = next(v for v in vins if v != best)
        assert index["models"][loser]["status"] == "challenger"
        first, second = champions[side]["decisions"]
        assert (first["vin"], first["decision"], first["champion_before"]) == (best, "champion", None)
        assert first["evidence"]["comparison"].startswith("first champion")
        assert (second["vin"], second["decision"], second["champion_before"]) == (loser, "challenger", best)
        ev = second["evidence"]
        assert ev["measure"] == cmp.MEASURE and ev["source"] == "validation" and ev["alpha"] == 0.05
        assert (
            ev["bars"]["count"] >= WF_SPEC["compare"]["min_bars"] and ev["bars"]["first"] < ev["bars"]["last"]
        )
        assert set(ev["test"]) == {"n", "lags", "mean_diff", "se", "statistic", "p_value"}
        assert ev["test"]["n"] == ev["bars"]["count"] and ev["test"]["p_value"] >= 0.05
        assert ev["why"].startswith("not significantly better") and second["reason"] == ev["why"]
    # ETHUSDT low: one failed its gate, one passed only the exploratory profile -> no champion, both rejected
    assert set(status["symbols"][OTHER]["champion"]) == {"high"}
    low = [e for e in index["models"].values() if e["symbol"] == OTHER and e["side"] == "low"]
    assert {e["status"] for e in low} == {"rejected"}
    # registry records: run status, engine summary, roster (same champions as results/registry/roster.json)
    rs = artifacts.read_json(registry_dir / "runs" / run / "status.json")
    assert sorted(rs["symbols"][OTHER]["rejected"]) == sorted(e["vin"] for e in low)
    summary = artifacts.read_json(registry_dir / "summary" / run / "engine_summary.json")
    assert summary["models_registered"] == len(run1) and len(summary["champions"]) == 3
    assert roster["run"] == run
    assert roster["champions"] == artifacts.read_json(registry_dir / "champions" / "roster.json")["champions"]


def test_rerun_with_nothing_new_writes_nothing(run1, workflow_like, tmp_path):
    registry_dir = tmp_path / "registry"
    first, _ = rr.register_run(registry_dir, run1, workflow_like.paths(), WF_SPEC)
    before = _files(registry_dir)
    again, _ = rr.register_run(registry_dir, run1[::-1], workflow_like.paths(), WF_SPEC)
    assert _files(registry_dir) == before  # no patch bump, no new champion, no run record touched
    assert again["run"] == first["run"]
    assert all(s["changed"] is False for s in again["symbols"].values())
    assert {k: v["champion"] for k, v in again["symbols"].items()} == {
        k: v["champion"] for k, v in first["symbols"].items()
    }


def test_newcomer_must_be_significantly_better(run1, workflow_like, tmp_path):
    """Run 2 retrains BTCUSDT w5 high with a much better validation record: champion when the paired HAC test
    on the common validation bars is significant at alpha, else a challenger (a registry with a tiny alpha
    keeps the old champion)."""
    newcomer = workflow_like.production(
        SYMBOL, 5, "high", num_leaves=15, rounds=80, tag="run2", validation_sharpe=40.0
    )
    data = workflow_like.paths()
    outcomes = []
    for alpha in (0.05, 1e-12):
        registry_dir = tmp_path / f"registry-{alpha}"
        spec = {**WF_SPEC, "compare": {**WF_SPEC["compare"], "alpha": alpha}}
        first, _ = rr.register_run(registry_dir, run1, data, spec)
        champ = first["symbols"][SYMBOL]["champion"]["high"]
        second, _ = rr.register_run(registry_dir, [newcomer], data, spec)
        new_vin = reg.read_model_meta(newcomer)["vin"]
        assert second["run"] != first["run"] and second["symbols"][SYMBOL]["registered"] == [new_vin]
        verdict = cmp.compare(
            reg.load_evidence(registry_dir, new_vin), reg.load_evidence(registry_dir, champ), spec["compare"]
        )
        wins = verdict["beats"]
        outcomes.append(wins)
        assert second["symbols"][SYMBOL]["champion"]["high"] == (new_vin if wins else champ)
        assert second["symbols"][SYMBOL]["changed"] is wins
        assert second["symbols"][SYMBOL]["champion"]["low"] == first["symbols"][SYMBOL]["champion"]["low"]
        assert reg.get_entry(registry_dir, new_vin)["status"] == ("champion" if wins else "challenger")
        slot = reg.read_champions(registry_dir, SYMBOL)["sides"]["high"]
        last = slot["decisions"][-1]
        assert last["evidence"] == verdict["reason"] and last["champion_before"] == champ
        assert 0 < verdict["reason"]["test"]["p_value"] < 1e-4
        if wins:  # the champion's evidence is kept beside it; rollback is one command away
            assert slot["evidence"] == verdict["reason"]
            assert reg.rollback(registry_dir, SYMBOL, "high")["champion"] == champ
    assert outcomes == [True, False]


def test_champion_without_evidence_is_replaced(run1, workflow_like, tmp_path):
    """A champion registered before evidence existed (promoted by hand) gives way to a newcomer whose own
    validation evidence reaches the minima."""
    registry_dir = tmp_path / "registry"
    old = workflow_like.production(SYMBOL, 20, "high", tag="old", validation_sharpe=None)
    vin_old = reg.register(registry_dir, old)["vin"]
    assert reg.promote(registry_dir, vin_old)["decision"] == "rejected"  # today: no evidence, never champion
    with pytest.MonkeyPatch.context() as mp:  # promoted before that rule, on its gate of record
        mp.setattr(reg, "eligibility", lambda entry: (True, "strict", "gate of record"))
        assert reg.promote(registry_dir, vin_old)["decision"] == "champion"
    new = workflow_like.production(SYMBOL, 5, "high", tag="new", validation_sharpe=-1.0)
    status, _ = rr.register_run(registry_dir, [new], workflow_like.paths(), WF_SPEC)
    assert status["symbols"][SYMBOL]["champion"]["high"] == reg.read_model_meta(new)["vin"]
    why = reg.read_champions(registry_dir, SYMBOL)["sides"]["high"]["evidence"]["why"]
    assert why.startswith("champion has no usable evidence")


def test_decisions_do_not_read_test_metrics(workflow_like, tmp_path):
    """Unit-level perturbation: the same models with other test-segment metrics (score, test AP, the gate
    verdict of record) give the same champions, challengers and recorded reasons."""
    runs = []
    for tag, score, test_gate in (("p0", None, True), ("p1", 0.99, False)):
        folders = [
            workflow_like.production(
                SYMBOL, w, side, tag="perturb", test_score=score, validation_sharpe=sharpe
            )
            for w, side, sharpe in ((5, "high", 1.0), (20, "high", 2.0), (5, "low", 0.5), (20, "low", 3.0))
        ]
        for f in folders:  # the test segment's verdicts of record: flipped in the perturbed copy
            m = artifacts.read_json(f / "metrics.json")
            m["gate"]["passed"] = test_gate
            m["test_average_precision"] = score
            artifacts.write_json(f / "metrics.json", m)
            write_sha256(f)
        registry_dir = tmp_path / tag
        status, _ = rr.register_run(registry_dir, folders, workflow_like.paths([SYMBOL]), WF_SPEC)
        sides = reg.read_champions(registry_dir, SYMBOL)["sides"]
        index = reg.read_index(registry_dir)["models"]
        name = {v: f"w{e['window']}/{e['side']}" for v, e in index.items()}  # VINs carry a counter
        runs.append(
            {
                side: [
                    (name[d["vin"]], d["decision"], d["reason"], json.dumps(d["evidence"], sort_keys=True))
                    for d in slot["decisions"]
                ]
                for side, slot in sides.items()
            }
        )
    assert runs[0] == runs[1]
    assert {s: [d[1] for d in ds] for s, ds in runs[0].items()} == {
        "high": ["champion", "challenger"],
        "low": ["champion", "challenger"],
    }


def test_bad_folder_stops_before_anything_is_written(run1, workflow_like, tmp_path):
    registry_dir = tmp_path / "registry"
    bad = tmp_path / "bad"
    shutil.copytree(run1[0], bad)
    (bad / "metrics.json").write_text(json.dumps({"vin": "X", "score": 0.99}))
    with pytest.raises(reg.IntegrityError, match="metrics.json"):
        rr.register_run(registry_dir, [*run1, bad], workflow_like.paths(), WF_SPEC)
    assert not registry_dir.exists()
    with pytest.raises(ValueError, match="OTHERUSDT"):
        rr.symbol_data_from_paths(
            [workflow_like.results / "features" / f"{SYMBOL}.parquet"],
            [workflow_like.results / "targets" / "OTHERUSDT" / "w5.parquet"],
            [],
        )


def test_batch_predictions_from_the_feature_table(run1, workflow_like, tmp_path):
    registry_dir = tmp_path / "registry"
    status, _ = rr.register_run(registry_dir, run1, workflow_like.paths(), WF_SPEC)
    path = workflow_like.results / "features" / f"{SYMBOL}.parquet"
    preds = pr.batch_from_file(registry_dir, SYMBOL, path)
    feats = pd.read_parquet(path)
    assert list(preds.columns) == pr.PRED_COLUMNS and len(preds) == 2 * len(feats)
    assert set(preds["vin"]) == set(status["symbols"][SYMBOL]["champion"].values())
    np.testing.assert_allclose(preds[["p_neither", "p_breakout", "p_reversion"]].sum(axis=1), 1.0, rtol=1e-9)
    # the same numbers as the full-table path
    pd.testing.assert_frame_equal(preds, pr.batch_predictions(registry_dir, SYMBOL, feats))
    # a symbol without a champion: an empty table with the same columns, not an error
    (registry_dir / "champions" / f"{OTHER}.json").unlink()
    empty = pr.batch_from_file(registry_dir, OTHER, workflow_like.results / "features" / f"{OTHER}.parquet")
    assert empty.empty and list(empty.columns) == pr.PRED_COLUMNS


def test_every_command_on_the_workflow_registry(run1, workflow_like, tmp_path, capsys):
    """The issue's commands, with its arguments, on the registry a workflow-like run leaves."""
    from tests.registry.conftest import workflow_bars
    from workflow_scripts.ops.cli import main

    registry_dir = tmp_path / "registry"
    status, _ = rr.register_run(registry_dir, run1, workflow_like.paths(), WF_SPEC)

    def cli(*args):
        code = main(["--registry", str(registry_dir), *map(str, args)])
        out, err = capsys.readouterr()
        return code, out, err

    champ = status["symbols"][SYMBOL]["champion"]["high"]
    code, out, _ = cli(
        "registry", "list", "--symbol", SYMBOL, "--model-type", "lightgbm", "--grade", "A", "--json"
    )
    assert code == 0 and {r["vin"] for r in json.loads(out)} == set(status["symbols"][SYMBOL]["registered"])
    entry = reg.get_entry(registry_dir, champ)
    code, out, _ = cli("registry", "list", "--target", entry["target"])
    assert code == 0 and champ in out and "champion" in out
    code, out, _ = cli("registry", "info", champ, "--json")
    assert code == 0 and json.loads(out)["run"] == status["run"]
    code, out, _ = cli("registry", "verify")
    assert code == 0 and f"Verified {len(run1)} model(s): 0 bad" in out
    # benchmark: the champions of both windows on the same recent bars of one target's labels
    feats = pd.read_parquet(workflow_like.results / "features" / f"{SYMBOL}.parquet")
    labels = pd.read_parquet(workflow_like.results / "targets" / SYMBOL / f"w{entry['window']}.parquet")
    data = feats.assign(label=labels[entry["target"]].to_numpy()).iloc[-720:]
    data.to_parquet(tmp_path / "recent.parquet")
    low = status["symbols"][SYMBOL]["champion"]["low"]
    code, out, _ = cli("registry", "benchmark", champ, low, "--data", tmp_path / "recent.parquet", "--json")
    rows = json.loads(out)
    assert code == 0 and {r["vin"] for r in rows} == {champ, low} and all(0 < r["macro_ap"] < 1 for r in rows)
    code, out, _ = cli("champions")
    assert code == 0 and all(v in out for s in status["symbols"].values() for v in s["champion"].values())
    code, out, _ = cli("archive", "--top-percent", "10", "--json")
    assert (
        code == 0
        and len(json.loads(out)) == 1
        and (registry_dir / "archive" / "archive_registry.json").is_file()
    )
    before = _files(registry_dir)
    code, out, _ = cli("cleanup", "--keep-days", "7", "--keep-top", "20", "--dry-run")
    assert code == 0 and "Would remove 0 model(s)" in out and _files(registry_dir) == before
    code, out, _ = cli("deploy", "--slot", "0", "--json")
    assert code == 0 and json.loads(out)["vin"] in {r["vin"] for r in reg.roster(registry_dir)}
    code, out, _ = cli("dashboard", "--once", "--results", workflow_like.results)
    assert code == 0 and champ in out and "Deployed slots" in out
    # live appends: bars newer than the last prediction, same numbers as the batch over the feature table
    bars_dir = tmp_path / "ingest"
    bars_dir.mkdir()
    full = workflow_bars()
    for s, b in full.items():
        b.iloc[:-5].to_parquet(bars_dir / f"{s}.parquet")
    out_dir = tmp_path / "live"
    code, out, _ = cli(
        "predict", "--symbol", SYMBOL, "--append", "--bars", bars_dir, "--out", out_dir, "--json"
    )
    assert code == 0 and json.loads(out)[0]["rows_added"] == 2 * (len(full[SYMBOL]) - 5)
    for s, b in full.items():
        b.to_parquet(bars_dir / f"{s}.parquet")
    for added in (2 * 5, 0):  # the new bars, then nothing: idempotent
        code, out, _ = cli(
            "predict", "--symbol", SYMBOL, "--append", "--bars", bars_dir, "--out", out_dir, "--json"
        )
        assert code == 0 and json.loads(out)[0]["rows_added"] == added
    live = pd.read_parquet(out_dir / f"{SYMBOL}.parquet")
    batch = pr.batch_from_file(registry_dir, SYMBOL, workflow_like.results / "features" / f"{SYMBOL}.parquet")
    pd.testing.assert_frame_equal(
        live.tail(10).reset_index(drop=True),
        batch.tail(10).reset_index(drop=True),
        check_exact=False,
        rtol=1e-5,
        atol=1e-7,
    )
    # rollback: a second champion first, then back to the first one
    newcomer = workflow_like.production(SYMBOL, 5, "high", num_leaves=15, rounds=80, tag="cli")
    reg.register(registry_dir, newcomer)
    reg.promote(
        registry_dir,
        reg.read_model_meta(newcomer)["vin"],
        scores={reg.read_model_meta(newcomer)["vin"]: 1.0, champ: 0.0},
    )
    code, out, _ = cli("rollback", SYMBOL, "--side", "high", "--json")
    assert code == 0 and json.loads(out)["champion"] == champ
    code, _, err = cli("rollback", SYMBOL, "--side", "high")
    assert code == 1 and "no previous champion" in err


def test_snakemake_marker_in_a_directory_output_is_not_part_of_the_model(workflow_like, tmp_path):
    """Snakemake touches .snakemake_timestamp in a directory() output after sha256.txt is written."""
    folder = workflow_like.production(SYMBOL, 5, "low", tag="marker")
    (folder / ".snakemake_timestamp").touch()
    status, _ = rr.register_run(tmp_path / "registry", [folder], workflow_like.paths(), WF_SPEC)
    vin = status["symbols"][SYMBOL]["registered"][0]
    assert not (tmp_path / "registry" / "models" / vin / ".snakemake_timestamp").exists()
    assert reg.load_model(tmp_path / "registry", vin).vin == vin


@pytest.mark.parametrize(
    "override, key",
    [
        ("registry.compare.alpha=1.5", "registry.compare.alpha"),
        ("registry.compare.min_bars=0", "registry.compare.min_bars"),
        ("registry.promote_gate_profiles=[lenient]", "registry.promote_gate_profiles"),
    ],
)
def test_registry_config_is_checked_at_startup(override, key):
    from workflow_scripts.config import schema as swcfg

    assert swcfg.compose([])["registry"]["promote_gate_profiles"] == ["strict"]
    with pytest.raises(swcfg.ConfigError, match=key):
        swcfg.compose([override])


def test_retraining_and_patch_reregistration_keep_standings(run1, workflow_like, tmp_path):
    """Same models retrained (only fit timings differ): nothing is written. A model re-registered with new
    metadata (a patch bump) keeps its standing: it does not undo an operator's rollback."""
    registry_dir = tmp_path / "registry"
    data = workflow_like.paths()
    first, _ = rr.register_run(registry_dir, run1, data, WF_SPEC)
    champ = first["symbols"][SYMBOL]["champion"]["high"]
    retrained = []
    for f in run1:
        copy = tmp_path / "retrained" / f.relative_to(workflow_like.root)
        shutil.copytree(f, copy)
        artifacts.write_json(copy / "training_log.json", {"best_iteration": 1, "fit_seconds": 9.9})
        write_sha256(copy)
        retrained.append(copy)
    before = _files(registry_dir)
    again, _ = rr.register_run(registry_dir, retrained, data, WF_SPEC)
    assert again["run"] == first["run"] and _files(registry_dir) == before
    # a newcomer takes over, the operator rolls back, then the newcomer comes again with a new grade
    newcomer = workflow_like.production(SYMBOL, 5, "high", num_leaves=15, rounds=80, tag="patch")
    vin = reg.read_model_meta(newcomer)["vin"]
    major, minor, patch = reg.parse_semver(reg.register(registry_dir, newcomer)["version"])
    reg.promote(registry_dir, vin, scores={vin: 1.0, champ: 0.0})
    reg.rollback(registry_dir, SYMBOL, "high")
    metrics = artifacts.read_json(newcomer / "metrics.json")
    artifacts.write_json(newcomer / "metrics.json", {**metrics, "grade": {"grade": "B"}})
    write_sha256(newcomer)
    status, _ = rr.register_run(registry_dir, [newcomer], data, WF_SPEC)
    entry = reg.get_entry(registry_dir, vin)
    assert entry["version"] == f"{major}.{minor}.{patch + 1}" and entry["grade"] == "B"
    assert entry["status"] == "retired" and "patch" in entry["version_reason"]
    assert (
        status["symbols"][SYMBOL]["champion"]["high"] == champ
        and status["symbols"][SYMBOL]["changed"] is False
    )
