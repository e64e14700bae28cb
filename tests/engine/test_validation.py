"""The in-pass validation counts what the loader's validation scan counts (an independent implementation)."""

import warnings

import numpy as np

from lvmdiag.data.validate import scan_sequences
from lvmdiag.engine.block import Part
from lvmdiag.engine.runner import run_local
from lvmdiag.engine.validation import ValidationAnalyzer
from lvmdiag.data.sequences import SequenceSet


def test_in_pass_validation_equals_the_load_scan_over_any_parts():
    rng = np.random.default_rng(4)
    c = rng.standard_normal((300, 3, 8)).astype(np.float32) * 2.0  # not unit norm
    t = rng.standard_normal((300, 8)).astype(np.float32)
    c[10, 1] = 0.0
    t[20, 3] = np.nan
    c[30, 0, 0] = np.inf
    c[200:205], t[200:205] = c[100:105], t[100:105]  # 5 duplicate windows ...
    c[250], t[250] = c[100], t[100]  # ... and a third copy of one of them
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        want = scan_sequences(c, t, "x.npz", scan="full")
    seq = SequenceSet(c, t, split="train")
    parts = [Part("train", lo, seq.subset(np.arange(lo, hi)), np.zeros(hi - lo, np.int64))
             for lo, hi in [(0, 70), (70, 230), (230, 300)]]  # duplicates straddle parts
    an = ValidationAnalyzer()
    _, states, summary = run_local(parts, [an], block_rows=32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = an.finalize(states["validation"], {"train": seq}).splits["train"]
    assert (got["n_rows"], got["n_nonfinite"], got["n_zero"], got["n_duplicates"]) == \
        (want.n_rows, want.n_nonfinite, want.n_zero, want.n_duplicates) == (300, 2, 1, 6)
    np.testing.assert_allclose([got["norm_min"], got["norm_max"]], [want.norm_min, want.norm_max], rtol=1e-6)
    assert len(caught) == 4  # non-finite, zero, duplicates, norms
