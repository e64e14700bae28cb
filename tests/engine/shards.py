"""Write a SequenceSet as .npy shard directories (for the engine tests)."""

from pathlib import Path

import numpy as np


def write_shards(seq, root, cuts):
    """Shards of ``seq`` cut at the row offsets ``cuts`` (articles may straddle cuts); returns the shard paths."""
    root = Path(root)
    bounds = [0, *sorted(set(int(c) for c in cuts if 0 < c < seq.n)), seq.n]
    paths = []
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        p = root / f"shard-{i:03d}"
        p.mkdir(parents=True)
        np.save(p / "contexts.npy", np.asarray(seq.contexts[lo:hi], np.float32))
        np.save(p / "targets.npy", np.asarray(seq.targets[lo:hi], np.float32))
        if seq.article_ids is not None:
            np.save(p / "article_ids.npy", np.asarray(seq.article_ids[lo:hi], np.int64))
        paths.append(p)
    return paths


def assert_same_report(a, b, path=""):
    """Tolerance policy of the engine tests, for ``to_dict()`` outputs of one analysis run two ways.

    Counts, ids, hashes, strings: exact. Floats: within 1e-6 (float32 block sums added in another
    order). A classifier AUC: within 1e-4, because it is a rank statistic: a 1e-7 change of one
    held-out score can swap one pair of scores, moving the AUC by 1/(n_a n_b). ``source`` fields
    (file names) are not compared: the same rows read from shards have another file name. Of the
    engine summary only the windows read per split are compared (parts and blocks differ by design).
    """
    if isinstance(a, dict) and "rows_read" in a:
        assert a["rows_read"] == b["rows_read"], path
        return
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            if key != "source":
                assert_same_report(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_report(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        tol = 1e-4 if "classifier" in path else 1e-6
        assert (a != a and b != b) or abs(a - b) <= tol, (path, a, b)
    else:
        assert a == b, (path, a, b)
