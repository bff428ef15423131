"""Registering a run's folders as one change (store.transaction, runs.register_run): the index, roster, run
status and summary are read once and written once, under the one lock, all or nothing (docs/SCALE.md,
"The registry and the CLI at scale")."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from tests.registry.conftest import OTHER, SYMBOL, WF_SPEC
from workflow_scripts import artifacts
from workflow_scripts.models.folder import write_sha256
from workflow_scripts.registry import runs as rr
from workflow_scripts.registry import store as reg

SPEC = WF_SPEC | {"promote_gate_profiles": ["exploratory"]}  # the factory's folders pass exploratory


def _data(*symbols):
    return {s: rr.SymbolData(features=Path(f"results/features/{s}.parquet")) for s in symbols}


def _files(root: Path) -> dict[str, bytes]:
    """Every file of the registry (the lock file aside), by relative path: temporaries and folders moved aside
    show up too."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture
def count_writes(monkeypatch):
    """{path relative to the registry: times written} of every JSON file written through artifacts."""
    written: Counter = Counter()
    real = artifacts.write_json

    def counting(path, obj):
        written[Path(path).as_posix()] += 1
        real(path, obj)

    monkeypatch.setattr(artifacts, "write_json", counting)
    return written


def _folders(factory, n_per_symbol: int) -> list[Path]:
    """n_per_symbol folders per (symbol, side) slot: windows 5, 20, ... with distinct validation Sharpe."""
    return [
        factory.folder(symbol=s, side=side, window=5 + 15 * i, validation=0.5 + i)
        for s in (SYMBOL, OTHER)
        for side in ("high", "low")
        for i in range(n_per_symbol)
    ]


@pytest.mark.parametrize("n_per_symbol", [1, 3])
def test_a_run_writes_each_registry_file_once(factory, reg_dir, count_writes, n_per_symbol):
    folders = _folders(factory, n_per_symbol)
    status, roster = rr.register_run(reg_dir, folders, _data(SYMBOL, OTHER), SPEC)
    run = status["run"]
    root = reg_dir.as_posix()
    registry_writes = {k[len(root) + 1 :]: v for k, v in count_writes.items() if k.startswith(root + "/")}
    # one write per file, whatever the number of folders: not one index rewrite per model
    assert registry_writes == {
        "index.json": 1,
        "champions/roster.json": 1,
        f"champions/{SYMBOL}.json": 1,
        f"champions/{OTHER}.json": 1,
        f"runs/{run}/status.json": 1,
        f"summary/{run}/engine_summary.json": 1,
    }
    index = reg.read_index(reg_dir)["models"]
    assert len(index) == len(folders) and {e["run"] for e in index.values()} == {run}
    # each slot has its champion (the best validation Sharpe first), the others are challengers
    assert (
        len(roster["champions"]) == 4
        and artifacts.read_json(reg_dir / "champions" / "roster.json")["champions"] == roster["champions"]
    )
    for slot in roster["champions"]:
        assert index[slot["vin"]]["validation"]["sharpe"] == max(
            e["validation"]["sharpe"]
            for e in index.values()
            if (e["symbol"], e["side"]) == (slot["symbol"], slot["side"])
        )
    assert sum(e["status"] == "challenger" for e in index.values()) == len(folders) - 4
    run_status = artifacts.read_json(reg_dir / "runs" / run / "status.json")["symbols"]
    assert sorted(run_status[SYMBOL]["registered"]) == status["symbols"][SYMBOL]["registered"]


def test_a_refusal_midway_leaves_the_registry_as_it_was(factory, reg_dir):
    first = factory.folder(symbol=SYMBOL, side="high", window=5, validation=1.0)
    rr.register_run(reg_dir, [first], _data(SYMBOL, OTHER), SPEC)
    before = _files(reg_dir)
    vin = artifacts.read_json(first / "metrics.json")["vin"]
    # the second folder of the batch claims the first one's VIN with another model: refused while the batch's
    # first folder is already in place
    clash = factory.folder(symbol=SYMBOL, side="high", window=20, num_leaves=15)
    artifacts.write_json(clash / "metrics.json", artifacts.read_json(clash / "metrics.json") | {"vin": vin})
    write_sha256(clash)
    batch = [factory.folder(symbol=OTHER, side="low", window=5), clash]
    old_sha = reg.read_index(reg_dir)["models"][vin]["model_sha256"]
    new_sha = artifacts.sha256_file(clash / "model.txt")
    with pytest.raises(reg.RegistryError) as err:
        rr.register_run(reg_dir, batch, _data(SYMBOL, OTHER), SPEC)
    assert str(err.value) == (
        f"VIN {vin} is already registered with a different model (sha256 {old_sha[:12]} vs {new_sha[:12]}); "
        "a VIN names one model"
    )
    assert _files(reg_dir) == before  # no index change, no model folder, no temporary left
    assert sorted(p.name for p in (reg_dir / "models").iterdir()) == [vin]


def test_a_failed_write_at_the_end_restores_every_file(factory, reg_dir, monkeypatch):
    rr.register_run(
        reg_dir, [factory.folder(symbol=SYMBOL, side="high", validation=0.5)], _data(SYMBOL), SPEC
    )
    before = _files(reg_dir)
    # a newcomer for the same slot (judged against its champion) and a first model of OTHER
    batch = [
        factory.folder(symbol=SYMBOL, side="high", window=20, validation=2.0),
        factory.folder(symbol=OTHER, side="low", validation=1.0),
    ]
    real = artifacts.write_json

    def roster_fails(path, obj):  # the roster is the last file the change writes
        if Path(path).name == "roster.json":
            raise OSError(28, "No space left on device")
        real(path, obj)

    monkeypatch.setattr(artifacts, "write_json", roster_fails)
    with pytest.raises(reg.RegistryError) as err:
        rr.register_run(reg_dir, batch, _data(SYMBOL, OTHER), SPEC)
    # index, run status, run summary, champions of both symbols, roster; the two new model folders
    assert str(err.value) == (
        f"{reg_dir.resolve()}: writing the registry's files failed ([Errno 28] No space left on device); "
        "nothing of this change was kept: the 6 file(s) and 2 model folder(s) are as they were before it"
    )
    assert _files(reg_dir) == before
    monkeypatch.setattr(artifacts, "write_json", real)
    status, _ = rr.register_run(reg_dir, batch, _data(SYMBOL, OTHER), SPEC)  # the same batch goes in later
    other_vin = artifacts.read_json(batch[1] / "metrics.json")["vin"]
    assert status["symbols"][OTHER]["champion"] == {"low": other_vin}
    assert len(reg.read_index(reg_dir)["models"]) == 3


def test_a_transaction_holds_the_lock_and_writes_at_its_end(factory, reg_dir):
    folders = [factory.folder(window=w) for w in (5, 20)]
    with reg.transaction(reg_dir):
        with pytest.raises(Timeout):  # another process (another open of the lock file) waits
            FileLock(str(reg.paths(reg_dir)["lock"]), timeout=0).acquire()
        with reg.registry_lock(reg_dir):  # the module's own locking inside it takes nothing more
            entries = [reg.register(reg_dir, f, run="r1") for f in folders]
        with reg.transaction(reg_dir):  # a nested one joins
            reg.promote(reg_dir, entries[0]["vin"], run="r1")
        assert reg.read_index(reg_dir)["models"][entries[0]["vin"]]["status"] == "champion"
        assert not (reg_dir / "index.json").exists() and not (reg_dir / "runs").exists()
    index = artifacts.read_json(reg_dir / "index.json")
    assert [index["models"][e["vin"]]["version"] for e in entries] == ["1.0.0", "2.0.0"]
    assert artifacts.read_json(reg_dir / "runs" / "r1" / "status.json")["symbols"][SYMBOL] == {
        "registered": [e["vin"] for e in entries],
        "champion": [entries[0]["vin"]],
    }
    with FileLock(str(reg.paths(reg_dir)["lock"]), timeout=0):
        pass  # released


def test_a_failure_inside_a_transaction_takes_out_its_folders(factory, reg_dir):
    kept = reg.register(reg_dir, factory.folder())
    again = reg_dir / kept["folder"] / "metrics.json"
    old_bytes = again.read_bytes()
    before = _files(reg_dir)
    with pytest.raises(RuntimeError, match="^stop here$"):
        with reg.transaction(reg_dir):
            reg.register(reg_dir, factory.folder(side="low"))
            assert (
                reg.register(reg_dir, reg_dir / kept["folder"])["version"] == "1.0.1"
            )  # replaces its folder
            raise RuntimeError("stop here")
    assert _files(reg_dir) == before and again.read_bytes() == old_bytes
