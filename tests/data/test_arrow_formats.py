"""Every analyzer gives identical results on one dataset stored as npz, .npy directory, Parquet (one
file and 8 shards), Arrow IPC, a datasets directory and safetensors (each written by its own library)."""

from __future__ import annotations

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pytest.importorskip("datasets")
pytest.importorskip("safetensors")

from arrow_helpers import normalise, write_all_formats  # noqa: E402

from lvmdiag.analyzers.bias_report import analyze_bias_report  # noqa: E402
from lvmdiag.analyzers.data_report import analyze_data  # noqa: E402
from lvmdiag.analyzers.direction import analyze_direction  # noqa: E402
from lvmdiag.analyzers.divergence import analyze_divergence  # noqa: E402
from lvmdiag.analyzers.leakage import analyze_leakage  # noqa: E402
from lvmdiag.data import load_sequences  # noqa: E402
from lvmdiag.data.lazy import BlockRows  # noqa: E402
from lvmdiag.synthetic import make_splits, make_store  # noqa: E402

FORMATS = ("npy", "parquet", "parquet8", "arrow", "hf", "safetensors")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    store = make_store(n_articles=30, d=12, rho=0.7, length=(9, 14), drift=0.3, rng=5)
    splits = make_splits(store, k=4, ratios=(0.6, 0.2, 0.2), names=("train", "val", "ood"), n_duplicated=2, rng=6)
    root = tmp_path_factory.mktemp("formats")
    return splits, write_all_formats(splits, root), str(root)


def _load(paths):
    return {name: load_sequences(p, split=name, k=4) for name, p in paths.items()}


def _results(splits):
    return {
        "bias": analyze_bias_report(splits, n_resamples=60, n_permutations=39, rng=1).to_dict(),
        "direction": analyze_direction(splits, n_permutations=39, n_bootstrap=60, n_folds=3, rng=2).to_dict(),
        "diverge": analyze_divergence(splits, n_permutations=19, n_bootstrap=19, rff_features=32,
                                      bandwidth_subsample=200, n_folds=3, rng=3).to_dict(),
        "leakage": analyze_leakage(splits).to_dict(),
        "data": analyze_data(splits, n_permutations=19, n_bootstrap=19, rng=4).to_dict(),
    }


@pytest.fixture(scope="module")
def reference(written):
    _, paths, _ = written
    return normalise(_results(_load(paths["npz"])), paths["npz"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_analyzer_identical_across_formats(written, reference, fmt):
    splits, paths, _ = written
    loaded = _load(paths[fmt])
    for name, s in loaded.items():
        # the same windows, ids and order as written
        assert np.array_equal(np.asarray(s.contexts), splits[name].contexts)
        assert np.array_equal(np.asarray(s.targets), splits[name].targets)
        assert np.array_equal(s.article_ids, splits[name].article_ids)
    if fmt in ("parquet", "parquet8", "arrow", "hf"):
        assert isinstance(loaded["train"].contexts, BlockRows)  # read lazily, not materialised
    got = normalise(_results(loaded), paths[fmt])
    assert set(got) == set(reference)
    for key in reference:
        assert got[key] == reference[key], key


def test_blocks_follow_row_groups_and_shards(written):
    _, paths, _ = written
    one = load_sequences(paths["parquet"]["train"], split="train")
    sharded = load_sequences(paths["parquet8"]["train"], split="train")
    n = one.n
    assert one.contexts.n_blocks == -(-n // 7)  # row groups of 7 rows
    assert sharded.contexts.n_blocks >= 8
    assert one.attrs["columnar"]["ignored_columns"] == ["text"]
    # reads across block boundaries and fancy indices agree with the whole array
    whole = np.asarray(one.contexts)
    rows = np.array([n - 1, 0, 6, 7, 7, 13])
    assert np.array_equal(sharded.contexts[rows], whole[rows])
    assert np.array_equal(sharded.contexts[5:23], whole[5:23])
    assert np.array_equal(sharded.contexts[:, -1, :], whole[:, -1, :])
    assert np.array_equal(sharded.targets[3], np.asarray(one.targets)[3])


def test_fixed_size_list_is_read_zero_copy(written):
    _, paths, _ = written
    s = load_sequences(paths["arrow"]["train"], split="train")
    block = s.contexts.block(0)
    assert not block.flags.writeable and not block.flags.owndata  # a view of the Arrow buffer
    assert block.base is not None
