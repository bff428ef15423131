import numpy as np
import pandas as pd
import pytest


def synthetic(n=600, p=6, seed=0):
    """Small 3-class problem with some signal: features float32, labels 0/1/2, horizon 5 bars."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)
    score = X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.8, size=n)
    y = np.where(score > 0.7, 1, np.where(score < -0.7, 2, 0)).astype(np.int8)
    frame = pd.DataFrame(X, columns=[f"tech__f{i}" for i in range(p)])
    positions = np.arange(n)
    return frame, y, positions, positions + 5


@pytest.fixture
def data():
    return synthetic()
