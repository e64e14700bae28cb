import numpy as np
import pytest

from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError, LvmdiagWarning
from lvmdiag.train.data import prepare_split, subsample_rows


def test_zero_nan_and_invalid_rows_are_dropped_with_a_warning():
    rng = np.random.default_rng(0)
    ctx = rng.standard_normal((10, 3, 4)).astype(np.float32)
    tgt = rng.standard_normal((10, 4)).astype(np.float32)
    ctx[1, 2] = 0.0  # failed encoder batch
    tgt[4, 0] = np.nan
    valid = np.ones(10, bool)
    valid[7] = False
    ids = np.arange(10)
    with pytest.warns(LvmdiagWarning, match="3 of 10"):
        arr = prepare_split(SequenceSet(ctx, tgt, article_ids=ids, valid=valid), "train")
    assert arr.n == 7 and arr.n_dropped == 3
    assert arr.article_ids.tolist() == [0, 2, 3, 5, 6, 8, 9]
    np.testing.assert_array_equal(arr.targets, tgt[[0, 2, 3, 5, 6, 8, 9]])


def test_arrays_are_writable_copies():
    ctx = np.ones((4, 2, 3), np.float32)
    ctx.setflags(write=False)
    arr = prepare_split(SequenceSet(ctx, np.ones((4, 3), np.float32)), "val")
    assert arr.contexts.flags.writeable and not np.shares_memory(arr.contexts, ctx)


def test_ordinary_arrays_are_shared_not_copied():
    # a copy of a clean real split would double its 1.3 GB; torch can share a writable C-contiguous array
    ctx, tgt = np.ones((4, 2, 3), np.float32), np.ones((4, 3), np.float32)
    arr = prepare_split(SequenceSet(ctx, tgt), "train")
    assert np.shares_memory(arr.contexts, ctx) and np.shares_memory(arr.targets, tgt)
    strided = np.ones((4, 2, 6), np.float32)[:, :, ::2]  # not C-contiguous: copied
    arr = prepare_split(SequenceSet(strided, tgt), "train")
    assert arr.contexts.flags.c_contiguous and not np.shares_memory(arr.contexts, strided)


def test_all_rows_unusable_is_an_input_error():
    with pytest.raises(InputError, match="no usable"), pytest.warns(LvmdiagWarning):
        prepare_split(SequenceSet(np.zeros((3, 2, 4), np.float32), np.ones((3, 4), np.float32)), "val")


def test_subsample_is_fixed_by_the_seed():
    a, b = subsample_rows(1000, 50, seed=3), subsample_rows(1000, 50, seed=3)
    assert np.array_equal(a, b) and len(np.unique(a)) == 50 and np.all(np.diff(a) > 0)
    assert np.array_equal(subsample_rows(30, 50, seed=3), np.arange(30))
