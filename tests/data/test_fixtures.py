"""The committed fixtures are what fixtures/make_fixtures.py generates (up to float rounding), and stay small."""

from __future__ import annotations

import importlib.util

import numpy as np

from lvmdiag.data import load_sequences

from _compare import assert_same_array
from data_helpers import FIXTURES, Recorder


def _generator():
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_committed_files(tmp_path):
    """Same arrays as committed: ids, counts and object arrays exactly; vectors up to float rounding.

    The generator's random walk takes BLAS dot products, whose summation order depends on the CPU,
    so the float bytes may differ by an ulp on another machine (tests/_compare.py states the policy).
    """
    written = _generator().make_synthetic(tmp_path)
    assert len(written) == 10
    for path in written:
        with np.load(path, allow_pickle=True) as got, np.load(FIXTURES / path.name, allow_pickle=True) as want:
            assert list(got.keys()) == list(want.keys()), path.name
            for key in got.keys():
                assert got[key].dtype == want[key].dtype, (path.name, key)
                assert_same_array(got[key], want[key])
        assert path.stat().st_size < 300_000
    assert sum(p.stat().st_size for p in written) < 2_000_000


def test_planted_effects_are_present():
    with Recorder():
        tr = load_sequences(FIXTURES / "planted_train.npz")
        va = load_sequences(FIXTURES / "planted_val.npz")
    shared = np.intersect1d(tr.article_ids, va.article_ids)
    assert shared.tolist() == [0, 1, 2]  # duplicated articles
    new = va.article_ids >= 1000
    assert va.attrs["validation"]["n_zero"] > 0 and tr.valid is None  # zero chunks only in val
    # the shift: new val articles lean towards coordinate 0, train articles do not
    ok = va.valid
    assert va.targets[new & ok, 0].mean() > tr.targets[:, 0].mean() + 0.2


def test_python_docs_subset_sizes():
    sizes = [(FIXTURES / "python_docs" / f).stat().st_size for f in ("train_store.npz", "val_store.npz")]
    assert 2_500_000 < sum(sizes) < 4_500_000
