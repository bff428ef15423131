"""The networks and their TorchScript twins: parity, baked-in normalisation, NaN handling, shape refusal,
windows."""

import numpy as np
import pytest
import torch
from _torch_helpers import synthetic_frame, tiny_cfg

from workflow_scripts.models import torch_models as tm


def _net(arch, n_features=5, seq_len=4, seed=0):
    torch.manual_seed(seed)
    cfg = tiny_cfg(arch, seq_len=seq_len)
    mean = np.linspace(-1, 1, n_features)
    std = np.linspace(0.5, 2, n_features)
    names = [f"tech__f{i}" for i in range(n_features)]
    return tm.SwingNet(tm.build_core(cfg, n_features), mean, std, names, seq_len, arch).eval()


@pytest.mark.parametrize("arch", tm.ARCHS)
def test_scripted_matches_eager(arch):
    net = _net(arch)
    scripted = tm.script_module(net)
    x = torch.randn(64, 4, 5, generator=torch.Generator().manual_seed(1)) * 3
    x[::5, 1, 2] = float("nan")
    with torch.no_grad():
        diff = (scripted(x) - net(x)).abs().max().item()
    assert diff <= tm.PARITY_ATOL


@pytest.mark.parametrize("arch", tm.ARCHS)
def test_nan_means_training_mean(arch):
    net = _net(arch)
    x = torch.randn(8, 4, 5)
    filled = x.clone()
    x[:, 2, 3] = float("nan")
    x[:, 0, 1] = float("inf")
    filled[:, 2, 3] = net.mean[3]
    filled[:, 0, 1] = net.mean[1]
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(filled), atol=1e-6, rtol=0)
        assert torch.isfinite(net(x)).all()


def test_normalisation_is_baked_in():
    """Scaling the buffers with the raw inputs leaves the logits unchanged: the module standardises itself."""
    net = _net("mlp")
    x = torch.randn(8, 4, 5)
    with torch.no_grad():
        before = net(x)
        net.mean.mul_(10).add_(3)
        net.std.mul_(10)
        after = net(x * 10 + 3)
    torch.testing.assert_close(before, after, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", tm.ARCHS)
def test_scripted_module_refuses_wrong_feature_count(arch):
    scripted = tm.script_module(_net(arch))
    with pytest.raises(Exception, match="wrong number of features in the last dimension: expected 5"):
        scripted(torch.zeros(2, 4, 6))
    with pytest.raises(Exception, match="wrong window length: expected seq_len 4"):
        scripted(torch.zeros(2, 3, 5))


def test_gap_and_start_are_masked():
    frame, _ = synthetic_frame(n=60, gap_at=30)
    seg = tm.segment_position(frame["timestamp"])
    arr = frame.drop(columns="timestamp").to_numpy(np.float32)
    win = tm.gather_windows(arr, seg, np.array([0, 2, 30, 31, 40]), 4)
    assert np.isnan(win[0, :3]).all() and np.array_equal(win[0, 3], arr[0], equal_nan=True)
    assert np.isnan(win[1, :1]).all() and np.array_equal(win[1, 1:], arr[0:3], equal_nan=True)
    assert np.isnan(win[2, :3]).all()  # row 30 is the first bar after the gap
    assert np.isnan(win[3, :2]).all() and np.array_equal(win[3, 2:], arr[30:32], equal_nan=True)
    assert np.array_equal(win[4], arr[37:41], equal_nan=True)


def test_memmap_batches_equal_materialised_windows(synth):
    frame, matrix, _rows, _labels = synth
    arr = matrix.array()
    assert isinstance(arr, np.memmap)
    batches = [np.array([3, 100, 251, 252]), np.array([599])]
    ds = tm.WindowBatches(matrix, batches, np.arange(matrix.n_bars), 4)
    x, y = ds[0]
    assert x.shape == (4, 4, 5) and y.tolist() == [3, 100, 251, 252]
    ref = tm.gather_windows(
        frame.drop(columns="timestamp").to_numpy(np.float32), matrix.seg_pos, batches[0], 4
    )
    np.testing.assert_array_equal(x.numpy(), ref)


@pytest.mark.parametrize("arch", tm.ARCHS)
def test_windowing_inside_the_module_matches_training_windows(synth, arch):
    """predict_proba_rows (what a fresh process uses) == the memmap/DataLoader path used in training."""
    frame, matrix, _rows, _labels = synth
    net = _net(arch)
    scripted = tm.script_module(net)
    r = np.arange(matrix.n_bars)
    a = tm.softmax64(tm.predict_logits_matrix(net, matrix, r, batch_size=97))
    b = tm.predict_proba(scripted, frame)
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    np.testing.assert_allclose(b.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize(
    "kw",
    [
        {"arch": "mlp"},
        {"arch": "mlp", "hidden": ()},
        {"arch": "transformer"},
        {"arch": "transformer", "n_layers": 0},
    ],
)
def test_recipe_rebuilds_the_module(kw):
    """module_bytes scripts a module rebuilt from module_recipe + state_dict in a fresh interpreter."""
    torch.manual_seed(0)
    cfg = tiny_cfg(**kw, dropout=0.25)
    net = tm.SwingNet(tm.build_core(cfg, 5), np.zeros(5), np.ones(5), list("abcde"), 4, cfg.arch).eval()
    recipe = tm.module_recipe(net)
    again = tm.rebuild_module(recipe, net.state_dict())
    assert repr(again) == repr(net) and tm.module_recipe(again) == recipe
    x = torch.randn(3, 4, 5)
    with torch.no_grad():
        torch.testing.assert_close(again(x), net(x), atol=0, rtol=0)
