"""Fixtures for data-layer tests: small synthetic windows."""

from __future__ import annotations

import numpy as np
import pytest

from lvmdiag.synthetic import make_splits, make_store


@pytest.fixture
def small_splits():
    """Stride-1 windows of 20 synthetic articles (K=5, D=16), split by article, ids kept."""
    store = make_store(n_articles=20, d=16, rho=0.8, length=(8, 14), rng=11)
    return store, make_splits(store, k=5, by="article", rng=12)
