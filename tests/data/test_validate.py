"""Every bad-input case gives a one-line InputError (or a warning) naming the file, the key and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from lvmdiag.data import check_compatible, load_article_store, load_sequences
from lvmdiag.data.validate import scan_sequences
from lvmdiag.errors import InputError

from data_helpers import Recorder


def _windows(n=40, k=5, d=8, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((n, k, d)).astype(np.float32)
    t = rng.standard_normal((n, d)).astype(np.float32)
    c /= np.linalg.norm(c, axis=-1, keepdims=True)
    t /= np.linalg.norm(t, axis=-1, keepdims=True)
    return c, t


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_contexts_wrong_rank(tmp_path):
    c, t = _windows()
    np.savez(tmp_path / "train.npz", contexts=c[:, 0, :], targets=t)
    with pytest.raises(InputError) as e:
        load_sequences(tmp_path / "train.npz")
    assert _one_line(e) == f"`contexts` in {tmp_path / 'train.npz'} must have shape (N, K, D); got (40, 8)."


def test_targets_wrong_rank_and_mismatched_n_and_d(tmp_path):
    c, t = _windows()
    np.savez(tmp_path / "a.npz", X=c, y=t[:, None, :])
    with pytest.raises(InputError, match=r"`y` in .*a\.npz must have shape \(N, D\); got \(40, 1, 8\)"):
        load_sequences(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", X=c, y=t[:30])
    with pytest.raises(InputError, match=r"`X` and `y` in .*b\.npz must have the same number of rows N; got 40 and 30"):
        load_sequences(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", X=c, y=t[:, :4])
    with pytest.raises(InputError, match=r"`X` in .*c\.npz has vectors of dimension 8 but `y` has 4"):
        load_sequences(tmp_path / "c.npz")


def test_integer_vectors_refused_float16_and_64_accepted(tmp_path):
    c, t = _windows()
    np.savez(tmp_path / "i.npz", contexts=(c * 100).astype(np.int32), targets=t)
    with pytest.raises(InputError) as e:
        load_sequences(tmp_path / "i.npz")
    msg = _one_line(e)
    assert "`contexts` in" in msg and "i.npz must be a float array; got int32" in msg and "astype(np.float32)" in msg
    for dtype in (np.float16, np.float64):
        np.savez(tmp_path / "f.npz", contexts=c.astype(dtype), targets=t.astype(dtype))
        with Recorder():
            s = load_sequences(tmp_path / "f.npz")
        assert s.attrs["dtype"] == np.dtype(dtype).name
        assert any("analysed as float32" in n for n in s.attrs["validation"]["notes"])
        assert next(s.iter_blocks(8))[1].dtype == np.float32


def test_nan_and_zero_rows_are_masked_and_counted(tmp_path):
    c, t = _windows(n=50)
    c[3, 2] = np.nan
    t[7, 0] = np.inf
    c[10, 4] = 0.0  # a failed encoder batch
    t[11] = 0.0
    t[12] = 0.0
    np.savez(tmp_path / "z.npz", contexts=c, targets=t)
    with Recorder() as msgs:
        s = load_sequences(tmp_path / "z.npz")
    assert np.flatnonzero(~s.valid).tolist() == [3, 7, 10, 11, 12]
    v = s.attrs["validation"]
    assert (v["n_nonfinite"], v["n_zero"]) == (2, 3)
    assert any("2 of 50 windows contain NaN or Inf" in m and "z.npz" in m for m in msgs)
    assert any("3 of 50 windows contain an all-zero vector in `contexts`/`targets`" in m for m in msgs)
    assert any("excluded" in m for m in msgs)


def test_all_rows_unusable_is_an_error(tmp_path):
    c, t = _windows(n=5)
    np.savez(tmp_path / "dead.npz", contexts=c, targets=np.zeros_like(t))
    with pytest.raises(InputError, match="every window in .*dead.npz has a zero or non-finite vector"):
        load_sequences(tmp_path / "dead.npz")


def test_non_unit_norms_warn_but_load(tmp_path):
    c, t = _windows()
    np.savez(tmp_path / "u.npz", contexts=c * 3.0, targets=t)
    with Recorder() as msgs:
        s = load_sequences(tmp_path / "u.npz")
    assert s.valid is None
    assert any("not unit-norm" in m and "analyzers normalise" in m and "u.npz" in m for m in msgs)
    assert s.attrs["validation"]["norm_max"] == pytest.approx(3.0, rel=1e-5)


def test_duplicate_windows_are_counted_exactly(tmp_path):
    c, t = _windows(n=30)
    c[20], t[20] = c[4], t[4]  # exact duplicate
    c[21], t[21] = c[4], t[4]  # and another
    c[22], t[22] = c[5], t[9]  # same target as row 9 but a different window: not a duplicate
    t[22] = t[9]
    np.savez(tmp_path / "d.npz", contexts=c, targets=t)
    with Recorder() as msgs:
        s = load_sequences(tmp_path / "d.npz")
    assert s.attrs["validation"]["n_duplicates"] == 2
    assert any("2 of 30 windows" in m and "exact duplicates" in m for m in msgs)


def test_empty_file_empty_archive_and_zero_rows(tmp_path):
    (tmp_path / "e.npz").write_bytes(b"")
    with pytest.raises(InputError, match=r"e\.npz is empty \(0 bytes\)"):
        load_sequences(tmp_path / "e.npz")
    np.savez(tmp_path / "none.npz")
    with pytest.raises(InputError, match=r"none\.npz is an empty archive"):
        load_sequences(tmp_path / "none.npz")
    np.savez(tmp_path / "n0.npz", contexts=np.zeros((0, 5, 8), np.float32), targets=np.zeros((0, 8), np.float32))
    with pytest.raises(InputError, match=r"`contexts` in .*n0\.npz has no rows \(N = 0\)"):
        load_sequences(tmp_path / "n0.npz")


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.95, 0.999])
def test_truncated_archive(tmp_path, keep):
    c, t = _windows(n=200)
    full = tmp_path / "full.npz"
    np.savez(full, contexts=c, targets=t)
    data = full.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError) as e:
        load_sequences(cut)
    msg = _one_line(e)
    assert str(cut) in msg and ("truncated" in msg or "corrupt" in msg)


def test_corrupt_compressed_member(tmp_path):
    c, t = _windows(n=200)
    path = tmp_path / "comp.npz"
    np.savez_compressed(path, contexts=c, targets=t)
    data = bytearray(path.read_bytes())
    mid = len(data) // 3
    data[mid : mid + 64] = bytes(64)  # zero out part of the deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as e:
        load_sequences(path)
    msg = _one_line(e)
    assert "comp.npz" in msg and "corrupt" in msg


def test_missing_keys_lists_found_keys_and_aliases(tmp_path):
    c, t = _windows()
    np.savez(tmp_path / "k.npz", embeddings=c, labels=t)
    with pytest.raises(InputError) as e:
        load_sequences(tmp_path / "k.npz")
    msg = _one_line(e)
    assert "`embeddings`, `labels`" in msg and "context_sequences" in msg and "target_vectors" in msg
    np.savez(tmp_path / "half.npz", contexts=c, labels=t)
    with pytest.raises(InputError, match=r"half\.npz has `contexts` but no targets array.*target_vectors"):
        load_sequences(tmp_path / "half.npz")


def test_object_vectors_refused_naming_allow_pickle(tmp_path):
    c, t = _windows(n=6)
    obj = np.empty(6, dtype=object)
    for i in range(6):
        obj[i] = c[i]
    np.savez(tmp_path / "o.npz", contexts=obj, targets=t)
    with pytest.raises(InputError) as e:
        load_sequences(tmp_path / "o.npz")
    msg = _one_line(e)
    assert "`contexts`" in msg and "o.npz" in msg and "--allow-pickle" in msg and "can run code" in msg


def test_nothing_is_unpickled_without_allow_pickle(tmp_path, monkeypatch):
    """Object metadata must be skipped by header inspection, never handed to pickle."""
    import pickle

    c, t = _windows(n=6)
    meta = np.array([{"article_index": i} for i in range(6)], dtype=object)
    np.savez(tmp_path / "m.npz", context_sequences=c, target_vectors=t, metadata=meta)

    def boom(*a, **k):
        raise AssertionError("unpickled without permission")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    with Recorder() as msgs:
        s = load_sequences(tmp_path / "m.npz")
    assert s.article_ids is None and any("`metadata`" in m for m in msgs)


def test_not_an_archive_single_npy_and_missing_path(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(InputError, match=r"text\.npz is not an \.npz archive"):
        load_sequences(tmp_path / "text.npz")
    np.save(tmp_path / "one.npy", np.zeros((3, 5, 8), np.float32))
    with pytest.raises(InputError, match=r"one\.npy is a single \.npy array.*contexts\.npy and targets\.npy"):
        load_sequences(tmp_path / "one.npy")
    with pytest.raises(InputError, match=r"nope\.npz does not exist"):
        load_sequences(tmp_path / "nope.npz")


def test_npy_dir_problems(tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    c, t = _windows()
    np.save(d / "contexts.npy", c)
    with pytest.raises(InputError, match=r"directory .*dir has no targets\.npy"):
        load_sequences(d)
    np.save(d / "targets.npy", t)
    np.save(d / "article_ids.npy", np.arange(3))
    with pytest.raises(InputError, match=r"`article_ids` in .*dir must be an integer array of shape \(40,\)"):
        load_sequences(d)
    (d / "article_ids.npy").unlink()
    raw = (d / "targets.npy").read_bytes()
    (d / "targets.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=r"targets\.npy cannot be read.*truncated"):
        load_sequences(d)


@pytest.mark.parametrize("ids", [np.arange(3), np.linspace(0, 1, 40), np.full(40, np.nan), np.array(["a"] * 40),
                                 np.zeros((40, 2), dtype=np.int64)])
def test_unusable_article_ids_in_an_archive_are_an_error_not_silently_dropped(tmp_path, ids):
    c, t = _windows()
    np.savez(tmp_path / "ids.npz", contexts=c, targets=t, article_ids=ids)
    with pytest.raises(InputError) as e:
        load_sequences(tmp_path / "ids.npz")
    assert _one_line(e).startswith(f"`article_ids` in {tmp_path / 'ids.npz'} must be an integer array of shape (40,)")
    np.savez(tmp_path / "ok.npz", contexts=c, targets=t, article_ids=np.arange(40) // 4)
    assert load_sequences(tmp_path / "ok.npz").id_source == "given"


def test_npy_dir_validation_streams_in_bounded_blocks(tmp_path, monkeypatch):
    """Validation of a memory-mapped file reads it in blocks, never as one array."""
    import lvmdiag.data.validate as validate

    d = tmp_path / "dir"
    d.mkdir()
    c, t = _windows(n=300, d=16)
    c[250, 1] = 0.0
    np.save(d / "contexts.npy", c)
    np.save(d / "targets.npy", t)
    monkeypatch.setattr(validate, "BLOCK_BYTES", 6 * 16 * 4 * 32)  # 32 rows per block
    seen: list[int] = []
    orig = validate.hash_rows

    def spy(block, seed=0):
        seen.append(block.shape[0])
        return orig(block, seed)

    monkeypatch.setattr(validate, "hash_rows", spy)
    with Recorder():
        s = load_sequences(d)
    assert isinstance(s.contexts, np.memmap)
    assert max(seen) == 32 and sum(seen) == 300
    assert np.flatnonzero(~s.valid).tolist() == [250]


def test_scan_matches_slow_loop():
    rng = np.random.default_rng(3)
    c, t = _windows(n=60, seed=3)
    bad_rows = rng.choice(60, 8, replace=False)
    for i, r in enumerate(bad_rows):
        if i % 2:
            c[r, rng.integers(5)] = 0
        else:
            t[r, rng.integers(8)] = np.nan
    with Recorder():
        rep = scan_sequences(c, t, "x.npz")
    slow = np.array(
        [all(np.isfinite(v).all() and np.linalg.norm(v) > 0 for v in [*c[i], t[i]]) for i in range(60)]
    )
    np.testing.assert_array_equal(rep.valid, slow)


def test_check_compatible_names_both_files(small_splits):
    from dataclasses import replace

    _, sp = small_splits
    a = replace(sp["train"], source="train.npz")
    b = replace(sp["val"], source="val.npz", contexts=sp["val"].contexts[:, :4])
    with pytest.raises(InputError, match=r"val\.npz has windows of K = 4 .* but train\.npz has K = 5"):
        check_compatible([a, b])
    b = replace(sp["val"], source="val.npz", contexts=sp["val"].contexts[..., :8], targets=sp["val"].targets[:, :8])
    with pytest.raises(InputError, match=r"val\.npz has 8-d vectors but train\.npz has 16-d"):
        check_compatible([a, b])
    check_compatible([a, replace(sp["val"], source="val.npz")])


def test_store_problems(tmp_path):
    v = np.eye(12, 8, dtype=np.float32)
    np.savez(tmp_path / "s1.npz", vectors=v)
    with pytest.raises(InputError, match=r"s1\.npz is not an article store.*`vectors`"):
        load_article_store(tmp_path / "s1.npz")
    np.savez(tmp_path / "s2.npz", vectors=v, article_ids=np.zeros(11, np.int64), chunk_index=np.arange(11))
    with pytest.raises(InputError, match=r"`article_ids` in .*s2\.npz must have one entry per row of `vectors` \(12\)"):
        load_article_store(tmp_path / "s2.npz")
    np.savez(tmp_path / "s3.npz", vectors=v, article_ids=np.zeros(12, np.int64), chunk_index=np.r_[0, np.arange(11)])
    with pytest.raises(InputError, match=r"`chunk_index` in .*s3\.npz repeats a position"):
        load_article_store(tmp_path / "s3.npz")
    ids = np.array([f"p{i // 6}" for i in range(12)], dtype=object)
    np.savez(tmp_path / "s4.npz", vectors=v, article_ids=ids)
    with pytest.raises(InputError, match=r"`article_ids` in .*s4\.npz is an object array.*--allow-pickle"):
        load_article_store(tmp_path / "s4.npz")
    st = load_article_store(tmp_path / "s4.npz", allow_pickle=True)
    assert st.n_articles == 2 and st.fmt == "arxiv_store"
    np.savez(tmp_path / "s5.npz", vectors=v, article_ids=np.zeros(12, np.int64), chunk_index=np.r_[0:6, 8:14])
    with Recorder() as msgs:
        load_article_store(tmp_path / "s5.npz")
    assert any("skip 1 times" in m for m in msgs)
    np.savez(tmp_path / "s6.npz", vectors=v, article_ids=np.repeat([0, 1], 6), chunk_index=np.r_[0:6, 0:6])
    with pytest.raises(InputError, match=r"no article has more than k = 6 chunks.*smaller k"):
        load_sequences(tmp_path / "s6.npz", k=6)
    np.savez(tmp_path / "s7.npz", vectors=v[:, :0], article_ids=np.zeros(12, np.int64), chunk_index=np.arange(12))
    with pytest.raises(InputError, match=r"`vectors` in .*s7\.npz has vectors of dimension D = 0"):
        load_sequences(tmp_path / "s7.npz")


def test_large_memory_maps_are_sampled_not_read_whole(tmp_path, monkeypatch):
    import lvmdiag.data.validate as validate

    n, d = 70_000, 4
    rng = np.random.default_rng(5)
    dd = tmp_path / "big"
    dd.mkdir()
    c = rng.standard_normal((n, 5, d)).astype(np.float32)
    c[0, 0] = 0.0  # inside the first sampled block
    np.save(dd / "contexts.npy", c)
    np.save(dd / "targets.npy", rng.standard_normal((n, d)).astype(np.float32))
    monkeypatch.setattr(validate, "FULL_SCAN_BYTES", 1024)  # pretend the file is huge
    with Recorder() as msgs:
        s = load_sequences(dd)
    v = s.attrs["validation"]
    assert v["mode"] == "sample" and v["n_scanned"] == 64 * 1024 and v["n_zero"] == 1
    assert s.valid is None  # unknown outside the sample: analyzers skip zero rows as they stream
    assert any("validated a sample of 65536 of 70000 windows" in m and "scan='full'" in m for m in msgs)
    with Recorder():
        full = load_sequences(dd, scan="full")
    assert full.attrs["validation"]["mode"] == "full" and np.flatnonzero(~full.valid).tolist() == [0]
    with pytest.raises(InputError, match="scan must be 'auto', 'full', 'sample' or 'none'"):
        load_sequences(dd, scan="fast")


def test_object_vectors_read_only_with_allow_pickle(tmp_path):
    c, t = _windows(n=6)
    obj = np.empty(6, dtype=object)
    for i in range(6):
        obj[i] = c[i]
    np.savez(tmp_path / "o.npz", contexts=obj, targets=t)
    s = load_sequences(tmp_path / "o.npz", allow_pickle=True)
    np.testing.assert_array_equal(s.contexts, c)
    assert any("object arrays" in n for n in s.attrs["validation"]["notes"])
    ragged = np.empty(6, dtype=object)
    for i in range(6):
        ragged[i] = c[i, : 1 + i % 2]
    np.savez(tmp_path / "r.npz", contexts=ragged, targets=t)
    with pytest.raises(InputError, match=r"`contexts` in .*r\.npz is an object array whose entries are not equal-length"):
        load_sequences(tmp_path / "r.npz", allow_pickle=True)


def test_flipped_bytes_in_stored_member_fail_the_checksum(tmp_path):
    from lvmdiag.data.writers import write_npz

    c, t = _windows(n=50)
    path = tmp_path / "flip.npz"
    write_npz(path, {"contexts": c, "targets": t})  # uncompressed, aligned: memory-mapped on read
    data = bytearray(path.read_bytes())
    pos = data.find(c.tobytes()[:64]) + 1000
    data[pos] ^= 0x01  # one bit of one float: still finite, only the CRC can tell
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as e:
        load_sequences(path)
    assert _one_line(e) == f"`contexts` in {path} fails its zip checksum (CRC-32): the file is corrupt; copy or regenerate it."
