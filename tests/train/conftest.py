"""Shared fixtures for the trainer tests: tiny models, one torch thread (the test machine is shared)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lvmdiag.data.sequences import SequenceSet  # noqa: E402
from lvmdiag.synthetic import make_splits, make_store  # noqa: E402
from lvmdiag.train.config import TrainConfig  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # Two intra-op threads on a loaded 2-core machine spin-wait and run 10-100x slower.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def tiny_config(**changes) -> TrainConfig:
    """A transformer small enough to train for a few epochs in about a second."""
    base = dict(d_model=32, nhead=4, num_layers=1, dropout=0.0, batch_size=32, epochs=3, lr=3e-3,
                warmup_epochs=1, train_eval_size=150, eval_pool_size=32)
    base.update(changes)
    return TrainConfig(**base)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def rotation_task(n: int, d: int = 16, k: int = 5, seed: int = 0, n_articles: int = 40) -> SequenceSet:
    """Learnable next vector: t = normalize(R c_last) for a fixed random orthogonal R (same R for every seed)."""
    r, _ = np.linalg.qr(np.random.default_rng(1234).standard_normal((d, d)))
    rng = np.random.default_rng(seed)
    ctx = _unit(rng.standard_normal((n, k, d)))
    tgt = _unit(ctx[:, -1] @ r.T)
    ids = np.sort(rng.integers(0, n_articles, size=n)).astype(np.int64)
    return SequenceSet(ctx, tgt, article_ids=ids, id_source="given", source="<rotation>", fmt="synthetic")


@pytest.fixture(scope="session")
def walk_splits() -> dict[str, SequenceSet]:
    """Random-walk articles (adjacent cosine exactly 0.8): the next chunk is its predecessor plus noise."""
    store = make_store(n_articles=40, d=16, rho=0.8, length=(12, 24), rng=0)
    return make_splits(store, k=5, ratios=(0.6, 0.2, 0.2), names=("train", "val", "ood"), rng=0)
