"""Small constructed frames for the screening and selection tests (kept tiny: 2 shared CPU cores)."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)
