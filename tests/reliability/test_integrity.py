"""Integrity without a workflow run (fast): no artifact is loaded with pickle, every model loader checks the
recorded sha256 and refuses a truncated or garbled model naming the file, the cost table refuses a symbol it
has no costs for, and the atomic writer never leaves a half-written file in place."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from tests.sandbox import ROOT
from workflow_scripts import artifacts
from workflow_scripts.evaluation.costs import ConfigCostProvider, CostError
from workflow_scripts.models import folder as registry
from workflow_scripts.models import heads

SCRIPTS = ROOT / "workflow_scripts"


# ---- no pickle ---------------------------------------------------------------------------------------------
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _pickle_uses(path: Path, root: Path = ROOT) -> list[str]:
    """Code (not comments or docstrings) that could unpickle: imports of pickle-like modules, joblib.load,
    torch.load without weights_only=True, numpy load with allow_pickle=True, pandas read_pickle/to_pickle."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [
                f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLE_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_MODULES:
            found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            owner = getattr(f.value, "id", "") if isinstance(f, ast.Attribute) else ""
            kw = {k.arg: k.value for k in node.keywords}
            if name in ("read_pickle", "to_pickle"):
                found.append(f"{where}: {name}(")
            elif name == "load" and owner == "torch":
                w = kw.get("weights_only")
                if not (isinstance(w, ast.Constant) and w.value is True):
                    found.append(f"{where}: torch.load( without weights_only=True")
            elif name == "load" and owner == "joblib":
                found.append(f"{where}: joblib.load(")
            elif name in ("load", "loads") and owner in ("np", "numpy"):
                a = kw.get("allow_pickle")
                if (
                    isinstance(a, ast.Constant)
                    and a.value is True
                    or (a is not None and not isinstance(a, ast.Constant))
                ):
                    found.append(f"{where}: numpy load with allow_pickle")
    return found


def test_no_artifact_is_loaded_with_pickle():
    files = sorted(SCRIPTS.rglob("*.py"))
    assert len(files) > 20
    found = [hit for p in files for hit in _pickle_uses(p)]
    assert found == [], "pickle-capable loading in workflow_scripts/:\n" + "\n".join(found)


def test_the_pickle_scan_catches_what_it_should(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import pickle\nimport joblib\nimport torch, numpy as np, pandas as pd\n"
        "torch.load('m.pt')\ntorch.load('m.pt', weights_only=False)\njoblib.load('x')\n"
        "np.load('a.npy', allow_pickle=True)\npd.read_pickle('x')\n"
        "# pickle in a comment is fine\ntorch.load('ok.pt', weights_only=True)\n"
    )
    hits = _pickle_uses(probe, root=tmp_path)
    assert len(hits) == 7, hits


# ---- a real model ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_model_text() -> tuple[str, list[str]]:
    """A small LightGBM model on real BTCUSDT bars (three causal features, next-bar direction)."""
    bars = pd.read_parquet(ROOT / "data" / "raw" / "BTCUSDT_1h.parquet").tail(3000).reset_index(drop=True)
    c = bars["close"].to_numpy()
    X = np.column_stack(
        [
            np.r_[np.nan, np.diff(np.log(c))],
            (bars["high"] - bars["low"]).to_numpy() / c,
            np.log(bars["volume"].to_numpy() + 1),
        ]
    ).astype(np.float32)
    y = np.r_[(np.diff(c) > 0).astype(int), 0]
    y[np.r_[np.abs(np.diff(np.log(c))) < 1e-3, False]] = 2
    names = ["f__ret1", "f__range", "f__logvol"]
    ds = lgb.Dataset(X[:-1], label=y[:-1], feature_name=names, params={"verbosity": -1})
    params = {
        "objective": "multiclass",
        "num_class": 3,
        "num_leaves": 7,
        "verbosity": -1,
        "num_threads": 1,
        "seed": 1,
        "deterministic": True,
        "force_col_wise": True,
    }
    return lgb.train(params, ds, num_boost_round=15).model_to_string(), names


def _production_folder(root: Path, text: str, names: list[str]) -> Path:
    folder = root / "prod"
    folder.mkdir()
    (folder / "model.txt").write_text(text)
    artifacts.write_json(
        folder / "config.json",
        {
            "symbol": "BTCUSDT",
            "window": 5,
            "side": "high",
            "target": "high_breakout_k1.0_th0.5",
            "model_type": "lightgbm",
        },
    )
    artifacts.write_json(folder / "metrics.json", {"vin": "TEST-VIN-1", "score": 0.5})
    artifacts.write_json(folder / "features.json", {"features": names})
    for name in ("costs.json", "split_indices.json", "training_log.json"):
        artifacts.write_json(folder / name, {})
    registry.write_sha256(folder)
    return folder


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    i = data.index(b"Tree=1")  # change one digit in the middle of a tree: still parses as a model
    j = data.index(b"leaf_value=", i) + len(b"leaf_value=")
    data[j] = ord("9") if data[j] != ord("9") else ord("8")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _garble], ids=["truncated", "garbled"])
def test_registry_loader_refuses_a_damaged_model_naming_the_file(tmp_path, real_model_text, damage):
    text, names = real_model_text
    folder = _production_folder(tmp_path, text, names)
    ok = registry.load_folder(folder)
    assert ok.predict_proba(pd.DataFrame(np.ones((2, 3), np.float32), columns=names)).shape == (2, 3)
    damage(folder / "model.txt")
    with pytest.raises(registry.IntegrityError) as exc:
        registry.load_folder(folder)
    assert str(folder / "model.txt") in str(exc.value) and "sha256 mismatch" in str(exc.value)


def test_registry_loader_refuses_a_tampered_metadata_file(tmp_path, real_model_text):
    folder = _production_folder(tmp_path, *real_model_text)
    artifacts.write_json(folder / "features.json", {"features": list(reversed(real_model_text[1]))})
    with pytest.raises(registry.IntegrityError, match=r"features\.json: sha256 mismatch"):
        registry.load_folder(folder)


@pytest.mark.parametrize("damage", [_truncate, _garble], ids=["truncated", "garbled"])
def test_head_loader_refuses_a_damaged_model_naming_the_file(tmp_path, real_model_text, damage):
    text, names = real_model_text
    model_path = tmp_path / "model.txt"
    model_path.write_text(text)
    artifacts.write_json(
        tmp_path / heads.HEAD_FILE,
        {
            "kind": "lightgbm",
            "model_file": "model.txt",
            "model_sha256": artifacts.sha256_file(model_path),
            "feature_names": names,
            "params": {},
            "best_iteration": 15,
            "seed": 1,
            "num_boost_round": 15,
            "early_stopping_rounds": 5,
            "encoder_sha256": None,
        },
    )
    heads.load_head(tmp_path)
    damage(model_path)
    with pytest.raises(ValueError, match="does not match the sha256") as exc:
        heads.load_head(tmp_path)
    assert str(model_path) in str(exc.value)


def test_encoder_loader_refuses_a_tampered_encoder(tmp_path):
    """The PCA encoder's version is the sha256 of its file and heads record it (encoder_sha256); loading with
    the recorded hash must refuse a changed file, naming it.
    """
    from workflow_scripts.models import shared_encoder

    X = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 6)), columns=[f"c{i}" for i in range(6)])
    path = tmp_path / "encoder.json"
    version = shared_encoder.save_encoder(path, shared_encoder.fit_pca_encoder(X, n_components=2))
    shared_encoder.load_encoder(path, expected_sha256=version)
    d = json.loads(path.read_text())
    d["mean"][0] += 1.0
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="sha256") as exc:
        shared_encoder.load_encoder(path, expected_sha256=version)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("damage", [_truncate, _garble], ids=["truncated", "garbled"])
def test_stage1_model_is_refused_when_it_differs_from_its_recorded_sha256(tmp_path, real_model_text, damage):
    """train_stage1 records model_sha256 in the variant's metrics.json; evaluate_stage1 (through
    stage1.verified_model_sha256) refuses a model.txt that no longer has it, naming both files."""
    from workflow_scripts.training import stage1

    folder = tmp_path / "BTCUSDT" / "w5" / "high_breakout_k1.0_th0.5"
    artifacts.write_text(folder / stage1.MODEL_FILE, real_model_text[0])
    artifacts.write_json(
        folder / stage1.METRICS_FILE,
        {"status": "trained", "model_sha256": artifacts.sha256_file(folder / stage1.MODEL_FILE)},
    )
    assert stage1.verified_model_sha256(folder) == hashlib.sha256(real_model_text[0].encode()).hexdigest()
    damage(folder / stage1.MODEL_FILE)
    with pytest.raises(ValueError, match="sha256 mismatch") as exc:
        stage1.verified_model_sha256(folder)
    assert str(folder / stage1.MODEL_FILE) in str(exc.value) and str(folder / stage1.METRICS_FILE) in str(
        exc.value
    )
    artifacts.write_json(folder / stage1.METRICS_FILE, {"status": "trained"})
    with pytest.raises(ValueError, match=r"metrics\.json: no model_sha256 recorded"):
        stage1.verified_model_sha256(folder)


# ---- costs -------------------------------------------------------------------------------------------------
def _table(**symbols):
    return {"name": "t", "source": "config:t", "symbols": symbols}


FULL = {"taker_fee_bps": 10.0, "maker_fee_bps": 2.0, "half_spread_bps": 0.5}


def test_costs_missing_for_a_symbol_name_it():
    provider = ConfigCostProvider(_table(BTCUSDT=FULL))
    assert provider.costs_for("BTCUSDT").taker_fee_bps == 10.0
    with pytest.raises(CostError, match=r"no costs for symbol 'ETHUSDT'.*listed: \['BTCUSDT'\]"):
        provider.costs_for("ETHUSDT")


@pytest.mark.parametrize(
    "entry, pattern",
    [
        (
            {"taker_fee_bps": 10.0, "maker_fee_bps": 2.0},
            r"costs for BTCUSDT: missing key\(s\) \['half_spread_bps'\]",
        ),
        (FULL | {"taker_fee_bps": "ten"}, r"costs for BTCUSDT: 'taker_fee_bps' must be a finite number"),
        (FULL | {"taker_fee_bps": -1.0}, r"costs for BTCUSDT: 'taker_fee_bps' must be in \[0"),
        (FULL | {"fee": 1.0}, r"costs for BTCUSDT: unknown key\(s\) \['fee'\]"),
        (FULL | {"entry_order": "market"}, r"costs for BTCUSDT: 'entry_order' must be one of"),
    ],
)
def test_bad_cost_entries_are_refused_at_construction_naming_symbol_and_key(entry, pattern):
    with pytest.raises(CostError, match=pattern):
        ConfigCostProvider(_table(BTCUSDT=entry))


def test_the_shipped_cost_table_covers_every_raw_symbol():
    from omegaconf import OmegaConf

    table = OmegaConf.to_container(OmegaConf.load(ROOT / "config" / "costs" / "default.yaml"))
    provider = ConfigCostProvider(table)
    for raw in sorted((ROOT / "data" / "raw").glob("*_1h.parquet")):
        assert provider.costs_for(raw.name.split("_")[0]).symbol == raw.name.split("_")[0]


# ---- atomic writes -----------------------------------------------------------------------------------------
def test_a_failed_write_leaves_neither_the_target_nor_a_temporary(tmp_path):
    target = tmp_path / "out" / "table.parquet"
    artifacts.write_parquet(target, pd.DataFrame({"a": [1.0]}))
    before = target.read_bytes()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), artifacts.atomic_path(target) as tmp:
        tmp.write_bytes(b"PAR1 half")
        raise Boom
    assert target.read_bytes() == before  # the old complete file is kept, not a half-written one
    assert [p.name for p in target.parent.iterdir()] == ["table.parquet"]


def test_workflow_entries_write_only_through_artifacts():
    """Every entry writes its outputs with workflow_scripts.artifacts (temp + rename); no direct writers."""
    direct = []
    for p in sorted((SCRIPTS / "entries").glob("*.py")):
        src = p.read_text()
        for needle in (
            ".to_parquet(",
            ".to_csv(",
            ".write_text(",
            ".write_bytes(",
            "open(",
            ".savefig(",
            ".save_model(",
        ):
            for n, line in enumerate(src.splitlines(), 1):
                if needle in line and "artifacts." not in line and not line.lstrip().startswith("#"):
                    direct.append(f"{p.relative_to(ROOT)}:{n}: {line.strip()}")
    assert direct == [], "direct (non-atomic) writes in entries:\n" + "\n".join(direct)


def test_temporaries_are_hidden_and_never_match_an_output_name(tmp_path):
    with artifacts.atomic_path(tmp_path / "metrics.json") as tmp:
        assert tmp.name.startswith(".metrics.json.") and tmp.name.endswith(".tmp")
        assert tmp.parent == tmp_path
    assert os.listdir(tmp_path) == ["metrics.json"]


KILLED_WRITER = """
import sys, time
from workflow_scripts import artifacts
with artifacts.atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"PAR1 half a table")
    print("writing", flush=True)
    time.sleep(120)
"""


def test_a_write_killed_with_sigkill_leaves_only_a_temporary_that_the_next_write_removes(tmp_path):
    """SIGKILL in the middle of an atomic write (no `finally` runs): the output is untouched (absent, or the
    old complete file), the hidden temporary stays; no output name or glob matches it, and rewriting the
    output (what the rerun of the killed job does) removes it. Temporaries of other outputs in the folder are
    not touched."""
    target = tmp_path / "ingest" / "BTCUSDT.parquet"
    other = tmp_path / "ingest" / "ETHUSDT.parquet"
    for previous in (None, pd.DataFrame({"a": [1.0, 2.0]})):
        if previous is not None:
            artifacts.write_parquet(target, previous)
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, str(target)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stale = artifacts.stale_temporaries(target)
        assert (
            len(stale) == 1
            and stale[0].name.startswith(".BTCUSDT.parquet.")
            and stale[0].name.endswith(".tmp")
        )
        if previous is None:
            assert not target.exists()
        else:
            pd.testing.assert_frame_equal(pd.read_parquet(target), previous)
        assert sorted(p.name for p in target.parent.glob("*.parquet")) == (
            ["BTCUSDT.parquet"] if previous is not None else []
        )
        other_tmp = other.parent / ".ETHUSDT.parquet.abcd1234.tmp"
        other_tmp.write_bytes(b"")
        artifacts.write_parquet(target, pd.DataFrame({"a": [3.0]}))
        assert artifacts.stale_temporaries(target) == [] and other_tmp.exists()
        assert artifacts.stale_temporaries(other) == [other_tmp]
        other_tmp.unlink()
        target.unlink()
