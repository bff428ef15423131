from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from workflow_scripts import artifacts
from workflow_scripts.models.folder import write_sha256
from workflow_scripts.registry import store as reg

ROOT = Path(__file__).resolve().parents[2]


# ---- round trip, versions ----------------------------------------------------------------------------------
def test_register_load_round_trip(factory, reg_dir):
    folder = factory.folder()
    entry = reg.register(reg_dir, folder, run="r1")
    assert entry["version"] == "1.0.0" and entry["status"] == "registered"
    assert (reg_dir / "models" / entry["vin"] / "model.txt").is_file()
    index = artifacts.read_json(reg_dir / "index.json")
    e = index["models"][entry["vin"]]
    for key in (
        "vin",
        "version",
        "symbol",
        "target",
        "window",
        "side",
        "model_type",
        "grade",
        "gate_profile",
        "gate_passed",
        "dependencies",
        "created",
        "folder",
    ):
        assert key in e, key
    assert (
        e["dependencies"]["data_version"] == "d" * 64
        and e["grade"] == "A"
        and e["gate_profile"] == "exploratory"
    )
    model = reg.load_model(reg_dir, entry["vin"])
    X = factory.features.iloc[-50:]
    expected = lgb.Booster(model_str=(folder / "model.txt").read_text()).predict(
        X[model.features].to_numpy(np.float32)
    )
    np.testing.assert_allclose(model.predict_proba(X), expected)
    assert reg.list_models(reg_dir, symbol="BTCUSDT", grade="A", model_type="lgbm")[0]["vin"] == entry["vin"]
    assert reg.list_models(reg_dir, grade="B") == []
    # sha256.txt is sha256sum compatible
    out = subprocess.run(
        ["sha256sum", "-c", "sha256.txt"],
        cwd=reg_dir / e["folder"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert artifacts.read_json(reg_dir / "runs" / "r1" / "status.json")["symbols"]["BTCUSDT"][
        "registered"
    ] == [e["vin"]]


def test_semantic_versions(factory, reg_dir):
    a = reg.register(reg_dir, factory.folder(num_leaves=7))
    b = reg.register(reg_dir, factory.folder(num_leaves=15))  # retrain, new params
    c = reg.register(reg_dir, factory.folder(num_leaves=15, data_version="e" * 64))  # new data, same artifact
    d = reg.register(reg_dir, factory.folder(num_leaves=15, columns=("f__ret1", "f__vol24")))  # feature set
    e = reg.register(reg_dir, factory.folder(num_leaves=15, columns=("f__ret1", "f__vol24")))  # identical
    f = reg.register(
        reg_dir, factory.folder(num_leaves=15, columns=("f__ret1", "f__vol24"), kind="reversion")
    )
    low = reg.register(reg_dir, factory.folder(side="low"))  # another lineage
    assert [x["version"] for x in (a, b, c, d, e, f, low)] == [
        "1.0.0",
        "1.1.0",
        "1.2.0",
        "2.0.0",
        "2.0.1",
        "3.0.0",
        "1.0.0",
    ]
    assert "feature_hash" in d["version_reason"] and "target" in f["version_reason"]
    again = reg.register(
        reg_dir, reg_dir / "models" / f["vin"]
    )  # same VIN, same files: metadata re-registration
    assert again["version"] == "3.0.1" and again["history"][0]["version"] == "3.0.0"


def test_same_vin_different_model_refused(factory, reg_dir, tmp_path):
    folder = factory.folder()
    entry = reg.register(reg_dir, folder)
    other = factory.folder(num_leaves=15)
    metrics = artifacts.read_json(other / "metrics.json") | {"vin": entry["vin"]}
    artifacts.write_json(other / "metrics.json", metrics)
    write_sha256(other)
    with pytest.raises(reg.RegistryError, match="already registered with a different model"):
        reg.register(reg_dir, other)


# ---- integrity ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["model.txt", "metrics.json", "features.json"])
def test_tampered_registered_model_refused(factory, reg_dir, name):
    entry = reg.register(reg_dir, factory.folder())
    path = reg_dir / entry["folder"] / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1  # one byte
    path.write_bytes(bytes(data))
    with pytest.raises(reg.IntegrityError) as info:
        reg.load_model(reg_dir, entry["vin"])
    msg = str(info.value)
    assert name in msg and "expected" in msg and "actual" in msg
    assert entry["files"][name] in msg
    bad = [r for r in reg.verify_registry(reg_dir) if not r["ok"]]
    assert len(bad) == 1 and name in bad[0]["error"]


def test_tampered_source_not_registered(factory, reg_dir):
    folder = factory.folder()
    with open(folder / "model.txt", "a") as fh:
        fh.write(" ")
    with pytest.raises(reg.IntegrityError, match="model.txt: sha256 mismatch"):
        reg.register(reg_dir, folder)
    assert not (reg_dir / "index.json").exists()


@pytest.mark.parametrize("missing", ["costs.json", "model.txt", "sha256.txt", "split_indices.json"])
def test_incomplete_folder_refused(factory, reg_dir, missing):
    folder = factory.folder()
    (folder / missing).unlink()
    with pytest.raises(reg.IntegrityError, match=missing.replace(".", r"\.") + "|no model file"):
        reg.register(reg_dir, folder)


def test_incomplete_registered_folder_refused_on_load(factory, reg_dir):
    entry = reg.register(reg_dir, factory.folder())
    (reg_dir / entry["folder"] / "training_log.json").unlink()
    with pytest.raises(reg.IntegrityError, match="training_log.json"):
        reg.load_model(reg_dir, entry["vin"])


def test_unlisted_file_refused(factory, reg_dir):
    folder = factory.folder()
    (folder / "extra.bin").write_bytes(b"x")
    with pytest.raises(reg.IntegrityError, match="not covered by sha256.txt"):
        reg.register(reg_dir, folder)


# ---- concurrency -------------------------------------------------------------------------------------------
CHILD = """
import sys
from workflow_scripts.registry import store as registry
for folder in sys.argv[2:]:
    registry.register(sys.argv[1], folder, run="conc")
"""


def test_concurrent_registrations_lose_nothing(factory, reg_dir):
    folders = [
        [
            str(factory.folder(num_leaves=7 if i % 2 else 15, side="high" if j % 2 else "low"))
            for j in range(5)
        ]
        for i in range(4)
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(reg_dir), *fs],
            env=env,
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for fs in folders
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    index = reg.read_index(reg_dir)
    assert len(index["models"]) == 20
    for lineage, n in (("BTCUSDT/high", 8), ("BTCUSDT/low", 12)):  # j = 1, 3 high; j = 0, 2, 4 low
        versions = [e["version"] for e in index["models"].values() if e["lineage"] == lineage]
        assert len(versions) == len(set(versions)) == n  # every registration got its own version
    assert all(r["ok"] for r in reg.verify_registry(reg_dir))
    status = artifacts.read_json(reg_dir / "runs" / "conc" / "status.json")
    assert len(status["symbols"]["BTCUSDT"]["registered"]) == 20
    assert not [p for p in (reg_dir / "models").iterdir() if p.name.startswith(".")]


# ---- champion / challenger / rollback ----------------------------------------------------------------------
def test_champion_promotion_and_rollback(factory, reg_dir, scoring):
    frame, labels = scoring
    scorer = reg.macro_ap_scorer(frame, labels)
    first = reg.register(reg_dir, factory.folder(num_leaves=3, rounds=5))
    d1 = reg.promote(reg_dir, first["vin"], scorer=scorer, run="r1")
    assert d1["decision"] == "champion"

    strong = reg.register(reg_dir, factory.folder(num_leaves=31, rounds=40))
    scores = reg.score_models(reg_dir, [first["vin"], strong["vin"]], scorer)
    better, worse = sorted(scores, key=scores.get, reverse=True)
    # a margin larger than the difference keeps the champion: the newcomer is a challenger
    d2 = reg.promote(reg_dir, strong["vin"], scores=scores, margin=abs(scores[better] - scores[worse]) + 1.0)
    assert d2["decision"] == "challenger"
    champs = reg.read_champions(reg_dir, "BTCUSDT")["sides"]["high"]
    assert champs["champion"] == first["vin"] and champs["challengers"][0]["vin"] == strong["vin"]

    # precomputed scores: a clearly better one wins with margin 0.01
    d3 = reg.promote(reg_dir, strong["vin"], scores={first["vin"]: 0.40, strong["vin"]: 0.45}, margin=0.01)
    assert d3["decision"] == "champion" and d3["previous_champion"] == first["vin"]
    assert reg.read_index(reg_dir)["models"][first["vin"]]["status"] == "retired"
    roster = artifacts.read_json(reg_dir / "champions" / "roster.json")["champions"]
    assert [(r["symbol"], r["side"], r["vin"]) for r in roster] == [("BTCUSDT", "high", strong["vin"])]

    failing = reg.register(reg_dir, factory.folder(gate_passed=False))
    assert reg.promote(reg_dir, failing["vin"], scores={failing["vin"]: 9.0})["decision"] == "rejected"

    rb = reg.rollback(reg_dir, "BTCUSDT")
    assert rb["champion"] == first["vin"] and rb["retired"] == strong["vin"]
    assert reg.roster(reg_dir)[0]["vin"] == first["vin"]
    with pytest.raises(reg.RegistryError, match="no previous champion"):
        reg.rollback(reg_dir, "BTCUSDT")
    summary = reg.write_run_summary(reg_dir, "r1")
    assert summary["models_registered"] == 0 or summary["run"] == "r1"
    assert (reg_dir / "summary" / "r1" / "engine_summary.json").is_file()


def test_rollback_needs_side_when_two(factory, reg_dir):
    for side in ("high", "low"):
        e = reg.register(reg_dir, factory.folder(side=side))
        reg.promote(reg_dir, e["vin"])
    with pytest.raises(reg.RegistryError, match="--side"):
        reg.rollback(reg_dir, "BTCUSDT")


# ---- archive, cleanup, deploy ------------------------------------------------------------------------------
def _populate(factory, reg_dir, n=5):
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).isoformat()
    entries = [
        reg.register(reg_dir, factory.folder(score=0.1 * (i + 1), num_leaves=3 + i), created=old)
        for i in range(n)
    ]
    return entries


def test_archive_top_percent(factory, reg_dir):
    entries = _populate(factory, reg_dir)
    chosen = reg.archive(reg_dir, top_percent=40)
    assert [e["vin"] for e in chosen] == [entries[4]["vin"], entries[3]["vin"]]
    for e in chosen:
        meta = artifacts.read_json(reg_dir / "archive" / e["vin"] / "metadata.json")
        assert meta["vin"] == e["vin"] and (reg_dir / "archive" / e["vin"] / "model.txt").is_file()
    assert set(artifacts.read_json(reg_dir / "archive" / "archive_registry.json")["models"]) == {
        e["vin"] for e in chosen
    }
    assert reg.read_index(reg_dir)["models"][entries[4]["vin"]]["archived"] is True


def test_cleanup_dry_run_deletes_nothing_and_protects(factory, reg_dir):
    entries = _populate(factory, reg_dir)
    reg.promote(reg_dir, entries[0]["vin"])  # champion, lowest score
    reg.archive(reg_dir, top_percent=20)  # archives entries[4]
    log = reg_dir / "logs" / "old.log"
    log.parent.mkdir(parents=True)
    log.write_text("x")
    old = (dt.datetime.now() - dt.timedelta(days=30)).timestamp()
    os.utime(log, (old, old))
    before = sorted(p for p in reg_dir.rglob("*"))
    index_before = (reg_dir / "index.json").read_bytes()
    res = reg.cleanup(reg_dir, keep_days=7, keep_top=1, dry_run=True)
    assert (
        sorted(p for p in reg_dir.rglob("*")) == before
        and (reg_dir / "index.json").read_bytes() == index_before
    )
    # kept: entries[0] (champion), entries[4] (archived, and the top 1)
    assert set(res["models"]) == {entries[i]["vin"] for i in (1, 2, 3)} and res["logs"] == [str(log)]
    res = reg.cleanup(reg_dir, keep_days=7, keep_top=2)
    left = set(reg.read_index(reg_dir)["models"])
    assert {entries[0]["vin"], entries[4]["vin"], entries[3]["vin"]} <= left
    assert not (reg_dir / "models" / entries[1]["vin"]).exists() and not log.exists()
    # nothing younger than keep_days is removed
    fresh = reg.register(reg_dir, factory.folder(score=0.0))
    assert fresh["vin"] not in reg.cleanup(reg_dir, keep_days=7, keep_top=0, dry_run=True)["models"]


def test_deploy_best_champion_and_swap(factory, reg_dir):
    a = reg.register(reg_dir, factory.folder(side="high", score=0.3))
    b = reg.register(reg_dir, factory.folder(side="low", score=0.6))
    reg.promote(reg_dir, a["vin"])
    reg.promote(reg_dir, b["vin"])
    info = reg.deploy(reg_dir, 0)
    assert info["vin"] == b["vin"]
    slot = reg_dir / "deployments" / "model_0"
    assert slot.is_symlink() and (slot / "model.txt").is_file()
    assert artifacts.read_json(slot / "deployment_info.json")["vin"] == b["vin"]
    first_target = slot.resolve()
    reg.deploy(reg_dir, 0, a["vin"])
    assert artifacts.read_json(slot / "deployment_info.json")["vin"] == a["vin"] and not first_target.exists()
    assert [d["vin"] for d in reg.deployed(reg_dir)] == [a["vin"]]
    for name, sha in artifacts.read_json(slot / "deployment_info.json")["files"].items():
        assert artifacts.sha256_file(slot / name) == sha
    # a deployed model is protected from cleanup
    assert a["vin"] in reg.protected_vins(reg_dir)


def test_deploy_refuses_tampered(factory, reg_dir):
    a = reg.register(reg_dir, factory.folder())
    (reg_dir / a["folder"] / "model.txt").write_text("tree\n")
    with pytest.raises(reg.IntegrityError, match="model.txt"):
        reg.deploy(reg_dir, 1, a["vin"])
    assert not (reg_dir / "deployments" / "model_1").exists()


def test_benchmark_same_data(factory, reg_dir, scoring):
    frame, labels = scoring
    a = reg.register(reg_dir, factory.folder(num_leaves=3, rounds=5))
    b = reg.register(reg_dir, factory.folder(num_leaves=15, rounds=30))
    rows = reg.benchmark(reg_dir, [a["vin"], b["vin"]], frame, labels)
    assert {r["vin"] for r in rows} == {a["vin"], b["vin"]}
    assert all(0 < r["macro_ap"] < 1 for r in rows) and rows[0]["macro_ap"] >= rows[1]["macro_ap"]
    assert rows[0]["rows"] == int(np.isin(labels, (0, 1, 2)).sum())
