"""The chunk-level store scan: the same validation as the window scan, Gram blocks bit-identical to the
window einsum, the same bias numbers, and one decode per row group for ``load`` + ``bias``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from arrow_helpers import vector_array  # noqa: E402
from data_helpers import Recorder  # noqa: E402

from lvmdiag.analyzers.temporal_bias import analyze_bias, compare_bias  # noqa: E402
from lvmdiag.data import load_sequences  # noqa: E402
from lvmdiag.data.lazy import GatherRows  # noqa: E402
from lvmdiag.data.store_scan import scan_store_windows, window_gram_of  # noqa: E402
from lvmdiag.data.validate import scan_sequences  # noqa: E402
from lvmdiag.data.windows import window_indices  # noqa: E402
from lvmdiag.synthetic import make_store  # noqa: E402

K = 4


def _bad_store(d: int = 10, rng: int = 3):
    """Random-walk articles with a zero row, a NaN row, an Inf row, a huge (overflowing) row, vectors
    off unit norm and one article repeated (duplicate windows)."""
    st = make_store(n_articles=14, d=d, length=(6, 12), rng=rng)
    vec = st.vectors.astype(np.float32).copy()
    vec[5] = 0.0
    vec[20, 3] = np.nan
    vec[33, 0] = np.inf
    vec[41] = 3e19  # finite entries whose squared sum overflows: not NaN/Inf, not zero
    vec[50:60] *= 2.0
    ids, pos = st.article_ids.copy(), st.chunk_index.copy()
    first = ids == ids[0]
    vec = np.concatenate([vec, vec[first]])
    ids = np.concatenate([ids, np.full(int(first.sum()), ids.max() + 1)])
    pos = np.concatenate([pos, pos[first]])
    return vec, ids, pos


def _write(tmp_path, vec, ids, pos, row_group_size, name="s.parquet", fixed=True):
    table = pa.table({"embedding": vector_array(pa, vec, fixed), "article_id": pa.array(ids), "chunk_index": pa.array(pos)})
    pq.write_table(table, tmp_path / name, row_group_size=row_group_size)
    return tmp_path / name


def _window_scan(seqs):
    """The window-level scan of the same windows (what the store reader ran before)."""
    c, t = seqs.contexts, seqs.targets
    key = ((seqs.attrs.get("columnar") or {}).get("columns") or {}).get("vector") or "vectors"  # the column messages name
    return scan_sequences(GatherRows(c.source, c.index), GatherRows(t.source, t.index), seqs.source, key, key)


def _without_gram(seqs):
    c, t = seqs.contexts, seqs.targets
    return replace(seqs, contexts=GatherRows(c.source, c.index), targets=GatherRows(t.source, t.index))


def _strip(obj):
    """A result dict without how long the pass took and how big its state was (not findings)."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in ("stream_seconds", "state_bytes")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


@pytest.mark.parametrize("row_group_size", [3, 7, 1000])  # groups shorter than a window, a few, one
def test_chunk_scan_finds_what_the_window_scan_finds(tmp_path, row_group_size):
    vec, ids, pos = _bad_store()
    path = _write(tmp_path, vec, ids, pos, row_group_size)
    with Recorder() as got_warnings:
        seqs = load_sequences(path, k=K)
    assert window_gram_of(seqs) is not None
    with Recorder() as window_warnings:
        ref = _window_scan(seqs)
    got = seqs.attrs["validation"]
    assert got == ref.summary()
    assert got["n_zero"] > 0 and got["n_nonfinite"] > 0 and got["n_duplicates"] > 0
    assert np.array_equal(seqs.valid, ref.valid)
    assert got_warnings == window_warnings and any("not unit-norm" in m for m in got_warnings)


def test_all_windows_unusable_is_the_same_one_line_error(tmp_path):
    vec, ids, pos = _bad_store()
    vec[:] = 0.0
    path = _write(tmp_path, vec, ids, pos, 16)
    with pytest.raises(Exception, match=r"every window in .*s.parquet has a zero or non-finite vector in `embedding`"):
        load_sequences(path, k=K)


@pytest.mark.parametrize("layout", ["consecutive", "reversed", "shuffled"])
def test_window_gram_is_bit_identical_to_the_window_einsum(layout):
    """Every Gram entry equals the float32 einsum of the gathered window, exactly (not within a
    tolerance): the bias numbers from it are the numbers of the vector path."""
    vec, ids, pos = _bad_store(d=33)
    n = vec.shape[0]
    if layout == "reversed":  # rows of each article stored last chunk first: successors are row - 1
        pos = pos.max() - pos
    elif layout == "shuffled":
        perm = np.random.default_rng(0).permutation(n)
        vec, ids, pos = vec[perm], ids[perm], pos[perm]
    ctx, tgt, _ = window_indices(ids, K, pos)
    order = np.argsort(ctx[:, 0], kind="stable")
    ctx, tgt = ctx[order], tgt[order]
    contexts, targets = GatherRows(vec, ctx), GatherRows(vec, tgt)
    with Recorder():
        _, gram = scan_store_windows(vec, ctx, tgt, contexts, targets, "mem")
    assert gram is not None
    c, t = np.asarray(contexts), np.asarray(targets)
    with np.errstate(all="ignore"):
        cc = np.einsum("nkd,njd->nkj", c, c)
        ct = np.einsum("nkd,nd->nk", c, t)
        tt = np.einsum("nd,nd->n", t, t)
    g = gram.block(0, ctx.shape[0])
    assert np.array_equal(g[:, :K, :K], cc, equal_nan=True)
    assert np.array_equal(g[:, :K, K], ct, equal_nan=True) and np.array_equal(g[:, K, :K], ct, equal_nan=True)
    assert np.array_equal(g[:, K, K], tt, equal_nan=True)
    assert np.array_equal(gram.block(5, 17), g[5:17], equal_nan=True)


def test_bias_from_the_gram_equals_bias_from_the_vectors(tmp_path):
    vec, ids, pos = _bad_store(d=16)
    path = _write(tmp_path, vec, ids, pos, 9)
    np.savez(tmp_path / "s.npz", vectors=vec, article_ids=ids, chunk_index=pos)
    with Recorder():
        seqs = load_sequences(path, k=K)
        npz = load_sequences(tmp_path / "s.npz", k=K)
    assert window_gram_of(npz) is not None and isinstance(npz.contexts, GatherRows)  # npz stores too: no window copy
    from_gram = _strip(analyze_bias(seqs, n_resamples=50, block_rows=16).to_dict())
    assert from_gram == _strip(analyze_bias(_without_gram(seqs), n_resamples=50, block_rows=16).to_dict())
    assert from_gram == _strip(analyze_bias(replace(npz, source=seqs.source), n_resamples=50, block_rows=16).to_dict())
    # a comparison of two splits takes the same path for each
    other = _write(tmp_path, vec[::-1].copy(), ids[::-1].copy(), pos[::-1].copy(), 9, "other.parquet")
    with Recorder():
        val = load_sequences(other, k=K, split="val")
    a = compare_bias({"train": seqs, "val": val}, n_resamples=30, n_permutations=19).to_dict()
    b = compare_bias({"train": _without_gram(seqs), "val": _without_gram(val)}, n_resamples=30, n_permutations=19).to_dict()
    assert _strip(a) == _strip(b)


@pytest.mark.parametrize("fixed", [True, False])  # fixed_size_list, and list<float> (D read from block 0 first)
def test_each_row_group_is_decoded_once_in_bias(tmp_path, monkeypatch, fixed):
    """``load`` + ``analyze_bias`` on a Parquet store decode every row group of the vector column
    exactly once: validation and the bias pass share one read."""
    st = make_store(n_articles=40, d=24, length=(8, 20), rng=8)
    path = _write(tmp_path, st.vectors.astype(np.float32), st.article_ids, st.chunk_index, 50, fixed=fixed)
    n_groups = pq.ParquetFile(path).metadata.num_row_groups
    assert n_groups >= 8
    reads: list[tuple[int, tuple[str, ...]]] = []
    real = pq.ParquetFile.read_row_group

    def counting(self, i, columns=None, **kw):
        reads.append((i, tuple(columns or ())))
        return real(self, i, columns=columns, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting)
    seqs = load_sequences(path, k=5)
    result = analyze_bias(seqs, n_resamples=20, block_rows=64)
    vector_reads = sorted(i for i, cols in reads if cols == ("embedding",))
    assert vector_reads == list(range(n_groups))  # each row group once, none twice
    assert result.n_windows == seqs.n
    # and the pass itself reads nothing
    reads.clear()
    analyze_bias(seqs, n_resamples=20)
    assert reads == []


def test_sampled_scan_keeps_the_window_scan_and_the_vector_path(tmp_path):
    vec, ids, pos = _bad_store()
    path = _write(tmp_path, vec, ids, pos, 10)
    with Recorder():
        seqs = load_sequences(path, k=K, scan="sample")
    assert seqs.attrs["validation"]["mode"] in ("sample", "full") and window_gram_of(seqs) is None


def test_npz_store_of_other_dtypes_keeps_float32_windows(tmp_path):
    """A float64 / float16 npz store is materialised as float32 windows, as before (no Gram)."""
    vec, ids, pos = _bad_store()
    np.savez(tmp_path / "f64.npz", vectors=vec.astype(np.float64), article_ids=ids, chunk_index=pos)
    np.savez(tmp_path / "f32.npz", vectors=vec, article_ids=ids, chunk_index=pos)
    with Recorder():
        f64 = load_sequences(tmp_path / "f64.npz", k=K)
        f32 = load_sequences(tmp_path / "f32.npz", k=K)
    assert isinstance(f64.contexts, np.ndarray) and f64.contexts.dtype == np.float32 and window_gram_of(f64) is None
    assert f64.attrs["validation"] == f32.attrs["validation"] and np.array_equal(f64.valid, f32.valid)
    same = replace(f64, source=f32.source)
    assert _strip(analyze_bias(same, n_resamples=20).to_dict()) == _strip(analyze_bias(f32, n_resamples=20).to_dict())
