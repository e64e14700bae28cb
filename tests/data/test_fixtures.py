"""The committed fixtures are exactly what fixtures/make_fixtures.py generates, and stay small."""

from __future__ import annotations

import importlib.util

import numpy as np

from lvmdiag.data import load_sequences

from data_helpers import FIXTURES, Recorder


def _generator():
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_committed_files_byte_for_byte(tmp_path):
    written = _generator().make_synthetic(tmp_path)
    assert len(written) == 10
    for path in written:
        assert path.read_bytes() == (FIXTURES / path.name).read_bytes(), path.name
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
