"""Trainer: early stopping, determinism, OOM halving, torch.compile fallback, device choice and CPU
fallback."""

import numpy as np
import pytest
import torch
from _torch_helpers import tiny_cfg

from workflow_scripts.models import torch_models as tm


def _train(synth, **kw):
    _frame, matrix, rows, labels = synth
    tr = {k: rows[k] for k in ("train", "validation")}
    return tm.train_torch_model(matrix, tr, {k: labels[k] for k in tr}, tiny_cfg(**kw))


def test_learns_and_early_stops(synth):
    trained = _train(synth, max_epochs=30, patience=2, lr=0.05)
    h = trained.history
    assert h["stopped_early"] and h["epochs_run"] < 30
    assert h["best_epoch"] == int(np.argmin(h["val_loss"]))
    assert h["epochs_run"] - 1 - h["best_epoch"] == 2  # stopped `patience` epochs after the best
    # the kept weights are the best epoch's: recomputing the validation loss gives the recorded best
    _frame, matrix, rows, labels = synth
    logits = tm.predict_logits_matrix(trained.module, matrix, rows["validation"])
    ce = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels["validation"]))
    assert abs(float(ce) - h["best_val_loss"]) < 1e-5
    assert h["best_val_loss"] < h["val_loss"][0] < np.log(3) + 0.2
    assert trained.module.training is False and trained.module.mean.device.type == "cpu"


@pytest.mark.parametrize("arch", tm.ARCHS)
def test_cpu_training_is_deterministic(synth, arch):
    a = _train(synth, arch=arch, max_epochs=2)
    b = _train(synth, arch=arch, max_epochs=2)
    assert tm.state_dict_digest(a.module) == tm.state_dict_digest(b.module)
    assert tm.module_bytes(a.module) == tm.module_bytes(b.module)  # byte-identical model.pt
    c = _train(synth, arch=arch, max_epochs=2, seed=8)
    assert tm.state_dict_digest(c.module) != tm.state_dict_digest(a.module)


def test_training_restores_global_torch_state(synth):
    torch.use_deterministic_algorithms(False)
    before = torch.get_num_threads()
    _train(synth, max_epochs=1, num_threads=1)
    assert torch.are_deterministic_algorithms_enabled() is False
    assert torch.get_num_threads() == before


def test_oom_halves_the_batch_and_continues(synth):
    seen = []

    def hook(rows, device):
        seen.append(rows)
        if rows > 40 and len(seen) < 5:  # the first large batches "do not fit"
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    _frame, matrix, rows, labels = synth
    tr = {k: rows[k] for k in ("train", "validation")}
    trained = tm.train_torch_model(
        matrix, tr, {k: labels[k] for k in tr}, tiny_cfg(batch_size=128, max_epochs=2), step_hook=hook
    )
    h = trained.history
    assert [e["batch_size"] for e in h["oom_events"]] == [128, 64]
    assert h["final_batch_size"] == 32 and h["batch_size"] == [32, 32]
    assert seen[:3] == [128, 64, 32]
    # after the halving the epoch continued from the failing batch: every training row was used once per epoch
    assert sum(seen[2:]) == 2 * len(rows["train"])


def test_oom_below_min_batch_size_is_an_error(synth):
    def hook(rows, device):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    _frame, matrix, rows, labels = synth
    tr = {k: rows[k] for k in ("train", "validation")}
    with pytest.raises(RuntimeError, match="out of memory even at batch size"):
        tm.train_torch_model(
            matrix, tr, {k: labels[k] for k in tr}, tiny_cfg(batch_size=32, min_batch_size=16), step_hook=hook
        )


def test_compile_failure_falls_back_to_eager(synth, monkeypatch):
    def broken_compile(model, *a, **k):
        def run(x):
            raise RuntimeError("simulated inductor failure")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    eager = _train(synth, max_epochs=2, compile="off")
    fell_back = _train(synth, max_epochs=2, compile="on")
    info = fell_back.history["compile"]
    assert info["used"] is False and "simulated inductor failure" in info["fallback_error"]
    assert tm.state_dict_digest(fell_back.module) == tm.state_dict_digest(eager.module)


def test_compile_raising_at_wrap_time_falls_back(synth, monkeypatch):
    def refuse(model, *a, **k):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", refuse)
    info = _train(synth, max_epochs=1, compile="on").history["compile"]
    assert info["used"] is False and "no compiler here" in info["fallback_error"]


def test_compile_is_off_by_default_on_cpu(synth):
    assert _train(synth, max_epochs=1, compile="auto").history["compile"]["used"] is False


def test_device_auto_prefers_working_cuda_then_mps_then_cpu(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("a real GPU is present")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # reported, but no kernel can run
    assert tm.select_device("auto").type in ("cpu", "mps")
    assert tm.select_device("cpu").type == "cpu"


def test_failed_gpu_training_falls_back_to_cpu(synth):
    if torch.cuda.is_available():
        pytest.skip("a real GPU is present")
    trained = _train(synth, max_epochs=1, device="cuda")
    assert trained.history["device"] == "cpu"
    assert trained.history["device_fallback"]["from"] == "cuda"
    with pytest.raises((AssertionError, RuntimeError)):  # torch's "not compiled with CUDA" / CUDA error
        _train(synth, max_epochs=1, device="cuda", cpu_fallback=False)


def test_amp_dtype_choice():
    assert tm.amp_dtype_for(torch.device("cpu")) is None
    assert tm.amp_dtype_for(torch.device("cuda"), "off") is None
    assert tm.amp_dtype_for(torch.device("cuda"), "fp16") is torch.float16
    assert tm.amp_dtype_for(torch.device("cuda"), "bf16") is torch.bfloat16


def test_config_from_yaml_files():
    import yaml
    from _torch_helpers import ROOT

    for kind, arch in (("torch_mlp", "mlp"), ("torch_transformer", "transformer")):
        cfg = yaml.safe_load((ROOT / "config" / "model" / f"{kind}.yaml").read_text())
        assert tm.TorchModelConfig.from_config(cfg).arch == arch
    with pytest.raises(ValueError, match="unknown torch model config key"):
        tm.TorchModelConfig.from_config({"kind": "torch_mlp", "params": {"hiden": [3]}})


def test_labels_must_be_trainable_codes(synth):
    _frame, matrix, rows, labels = synth
    bad = dict(labels, train=np.where(labels["train"] == 0, -3, labels["train"]))
    with pytest.raises(ValueError, match="class codes 0, 1, 2"):
        tm.train_torch_model(matrix, rows, bad, tiny_cfg())


def test_model_pt_is_byte_identical_across_processes(tmp_path):
    """Two fresh interpreters with different hash seeds (TorchScript's constant order follows it unless
    pinned)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    child = Path(__file__).resolve().parent / "_train_child.py"
    for seed in ("1", "2"):
        (tmp_path / seed).mkdir()
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run([sys.executable, str(child), str(tmp_path / seed)], check=True, env=env, timeout=300)
    for arch in tm.ARCHS:
        assert (tmp_path / "1" / f"{arch}.pt").read_bytes() == (tmp_path / "2" / f"{arch}.pt").read_bytes(), (
            arch
        )
    # ... and in THIS process, after other modules were scripted (other sizes of the same torch classes: what
    # makes TorchScript number its classes ___torch_mangle_N by process history, and what made the suite fail
    # when run with other tests before model.pt was scripted in a fresh interpreter).
    from _torch_helpers import tiny_models_bytes

    for width in (3, 7, 11):
        tm.script_module(
            torch.nn.Sequential(torch.nn.Linear(width, 2), torch.nn.GELU(), torch.nn.Dropout(0.3))
        )
        torch.jit.script(torch.nn.Sequential(torch.nn.Linear(width, 5), torch.nn.LayerNorm(5)))
    here = tiny_models_bytes(tmp_path)
    for arch in tm.ARCHS:
        assert here[arch] == (tmp_path / "1" / f"{arch}.pt").read_bytes(), arch


def test_model_pt_is_a_valid_zip_that_loads(synth):
    import io
    import zipfile

    trained = _train(synth, max_epochs=1)
    data = tm.module_bytes(trained.module)
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None
    x = torch.randn(3, 4, 5)
    with torch.no_grad():
        torch.testing.assert_close(tm.load_scripted(data)(x), trained.module(x), atol=tm.PARITY_ATOL, rtol=0)
