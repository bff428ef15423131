"""CNN-LSTM extractor: causal embeddings, train-only normalisation, early stopping, TorchScript parity and
byte-identical export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.agents.conftest import cnn_config, random_market
from workflow_scripts.agents.cnn_lstm import (
    direction_labels,
    embed_bars,
    labelled_rows,
    parity,
    scripted_bytes,
    train_extractor,
)
from workflow_scripts.models.torch_models import load_scripted

CFG = cnn_config(
    seq_len=8,
    conv_channels=4,
    hidden=8,
    embedding_dim=3,
    max_epochs=3,
    batch_size=64,
    device="cpu",
    horizon=3,
)


@pytest.fixture(scope="module")
def trained():
    market = random_market(n=400, n_features=4, seed=4)
    seg_pos = np.arange(400)
    out = train_extractor(market.features, market.close, seg_pos, (0, 250), (260, 330), CFG)
    return market, seg_pos, out


def test_embedding_at_t_uses_bars_up_to_t_only(trained):
    market, seg_pos, out = trained
    t = 200
    changed = market.features.copy()
    changed[t + 1 :] = np.random.default_rng(0).normal(0, 100, changed[t + 1 :].shape)
    a = embed_bars(out.net, market.features, seg_pos)
    b = embed_bars(out.net, changed, seg_pos)
    np.testing.assert_array_equal(a[: t + 1], b[: t + 1])
    assert not np.allclose(a[t + 1 :], b[t + 1 :])
    assert a.shape == (400, 3) and np.isfinite(a).all()


def test_normalisation_comes_from_the_train_segment_only(trained):
    market, seg_pos, out = trained
    changed = market.features.copy()
    changed[250:] += 1000.0
    again = train_extractor(changed, market.close, seg_pos, (0, 250), (260, 330), CFG)
    torch.testing.assert_close(again.net.mean, out.net.mean)
    torch.testing.assert_close(again.net.std, out.net.std)
    expected = np.nanmean(market.features[:250].astype(np.float64), axis=0)
    np.testing.assert_allclose(out.net.mean.numpy(), expected, rtol=1e-5)


def test_training_is_deterministic_and_early_stopped(trained):
    market, seg_pos, out = trained
    again = train_extractor(market.features, market.close, seg_pos, (0, 250), (260, 330), CFG)
    for k, v in out.net.state_dict().items():
        torch.testing.assert_close(again.net.state_dict()[k], v, rtol=0, atol=0)
    history = out.history
    assert history["best_validation_loss"] == min(history["validation_loss"])
    assert history["n_rows"] == {"train": 247, "validation": 67}


def test_torchscript_parity_and_identical_bytes(trained):
    market, seg_pos, out = trained
    data = scripted_bytes(out.net)
    assert scripted_bytes(out.net) == data
    assert parity(out.net, data, market.features, seg_pos) <= 1e-5
    scripted = load_scripted(data)
    window = torch.from_numpy(np.nan_to_num(market.features[:8])[None])
    torch.testing.assert_close(scripted.logit(window), out.net.logit(window), rtol=0, atol=1e-5)
    with pytest.raises(torch.jit.Error, match="raw windows"):
        scripted(torch.zeros(1, 5, 4))


def test_labels_never_cross_the_segment_end():
    close = np.array([1.0, 2.0, 1.5, 1.7, 1.6, 1.9])
    np.testing.assert_array_equal(direction_labels(close, 2)[:4], [1.0, 0.0, 1.0, 1.0])
    assert np.isnan(direction_labels(close, 2)[4:]).all()
    np.testing.assert_array_equal(labelled_rows((2, 6), 2), [2, 3])
