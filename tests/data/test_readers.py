"""Every sequence form reads back exactly the arrays that were written, with the right fmt and ids."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lvmdiag.data import load_sequences, load_split_files
from lvmdiag.data.validate import CONTEXT_ALIASES, TARGET_ALIASES
from lvmdiag.errors import InputError

from data_helpers import FIXTURES, Recorder


@pytest.mark.parametrize("ckey", CONTEXT_ALIASES)
@pytest.mark.parametrize("tkey", TARGET_ALIASES)
def test_every_alias_pair_reads(tmp_path, small_splits, ckey, tkey):
    _, splits = small_splits
    tr = splits["train"]
    path = tmp_path / "x.npz"
    np.savez(path, **{ckey: tr.contexts, tkey: tr.targets})
    s = load_sequences(path)
    np.testing.assert_array_equal(s.contexts, tr.contexts)
    np.testing.assert_array_equal(s.targets, tr.targets)
    assert s.attrs["keys"]["contexts"] == ckey and s.attrs["keys"]["targets"] == tkey
    assert s.article_ids is None and s.id_source == "none"
    assert s.fmt == ("wikipedia" if ckey == "context_sequences" else "arxiv")
    assert s.valid is None


def test_uncompressed_npz_is_memory_mapped_when_aligned(tmp_path, small_splits, monkeypatch):
    import lvmdiag.data._npz as npz
    from lvmdiag.data.writers import write_npz

    tr = small_splits[1]["train"]
    write_npz(tmp_path / "a.npz", {"contexts": tr.contexts, "targets": tr.targets})  # 64-byte aligned data
    s = load_sequences(tmp_path / "a.npz", split="ood")
    assert isinstance(s.contexts, np.memmap) and isinstance(s.targets, np.memmap)
    assert s.contexts.flags.aligned and s.split == "ood" and s.source == str(tmp_path / "a.npz")
    np.testing.assert_array_equal(s.contexts, tr.contexts)
    # np.savez leaves member data misaligned: small members are read into memory instead (fast kernels),
    # large ones are still mapped (bounded memory)
    np.savez(tmp_path / "b.npz", contexts=tr.contexts, targets=tr.targets)
    b = load_sequences(tmp_path / "b.npz")
    assert not isinstance(b.contexts, np.memmap) and b.contexts.flags.aligned
    monkeypatch.setattr(npz, "UNALIGNED_READ_BYTES", 0)
    big = load_sequences(tmp_path / "b.npz")
    assert isinstance(big.contexts, np.memmap)
    np.testing.assert_array_equal(big.contexts, tr.contexts)
    # compressed archives cannot be mapped: read into memory, same values
    np.savez_compressed(tmp_path / "c.npz", contexts=tr.contexts, targets=tr.targets)
    c = load_sequences(tmp_path / "c.npz")
    assert not isinstance(c.contexts, np.memmap)
    np.testing.assert_array_equal(c.contexts, tr.contexts)


def _wiki_arrays(seq):
    n = seq.n
    meta = np.empty(n, dtype=object)
    for i, a in enumerate(seq.article_ids):
        meta[i] = {"article_index": int(a), "target_chunk_index": i, "crosses_article": False}
    texts = np.array([f"t{i}" for i in range(n)], dtype=object)
    return {
        "context_sequences": seq.contexts,
        "target_vectors": seq.targets,
        "metadata": meta,
        "target_texts": texts,
        "context_length": np.asarray(5),
        "num_sequences": np.asarray(n),
        "source_dataset": np.asarray("wiki"),
    }


def test_wikipedia_form_with_pickle_reads_ids_and_texts(tmp_path, small_splits):
    tr = small_splits[1]["train"]
    np.savez(tmp_path / "w.npz", **_wiki_arrays(tr))
    s = load_sequences(tmp_path / "w.npz", allow_pickle=True)
    assert s.fmt == "wikipedia" and s.id_source == "given"
    np.testing.assert_array_equal(s.article_ids, tr.article_ids)
    assert s.extras["target_texts"][3] == "t3" and s.extras["metadata"][0]["target_chunk_index"] == 0
    assert s.attrs["scalars"] == {"context_length": 5, "num_sequences": tr.n, "source_dataset": "wiki"}


def test_wikipedia_form_without_pickle_skips_objects_with_warning(tmp_path, small_splits):
    tr = small_splits[1]["train"]
    path = tmp_path / "w.npz"
    np.savez(path, **_wiki_arrays(tr))
    with Recorder() as msgs:
        s = load_sequences(path)
    assert s.article_ids is None and s.extras == {} and s.fmt == "wikipedia"
    (msg,) = [m for m in msgs if "skipped object arrays" in m]
    assert str(path) in msg and "`metadata`" in msg and "`target_texts`" in msg
    assert "article ids were not read" in msg and "--allow-pickle" in msg and "run code" in msg


def test_two_split_file_needs_a_choice(tmp_path, small_splits):
    _, sp = small_splits
    path = tmp_path / "two.npz"
    np.savez(
        path,
        context_sequences=sp["train"].contexts,
        target_vectors=sp["train"].targets,
        val_context_sequences=sp["val"].contexts,
        val_target_vectors=sp["val"].targets,
    )
    with pytest.raises(InputError, match=r"two\.npz holds 2 splits \(train, val\).*split='train'"):
        load_sequences(path)
    v = load_sequences(path, split="val")
    t = load_sequences(path, split="train")
    np.testing.assert_array_equal(v.contexts, sp["val"].contexts)
    np.testing.assert_array_equal(t.targets, sp["train"].targets)
    assert (t.split, v.split, t.fmt, v.fmt) == ("train", "val", "two_split", "two_split")
    both = load_split_files(path)
    assert list(both) == ["train", "val"] and both["val"].n == sp["val"].n
    with pytest.raises(InputError, match="no split 'ood'"):
        load_sequences(path, split="ood")


def test_rebuilt_form(tmp_path, small_splits):
    tr = small_splits[1]["train"]
    n = tr.n
    manifest = {"source": "x", "k": 5}
    np.savez(
        tmp_path / "r.npz",
        contexts=tr.contexts,
        targets=tr.targets,
        article_ids=tr.article_ids,
        target_indices=np.arange(n, dtype=np.int64),
        context_indices=np.arange(n * 5, dtype=np.int64).reshape(n, 5),
        manifest=np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8),
    )
    s = load_sequences(tmp_path / "r.npz")
    assert s.fmt == "rebuilt" and s.id_source == "given" and s.attrs["manifest"] == manifest
    np.testing.assert_array_equal(s.article_ids, tr.article_ids)
    assert s.extras["context_indices"].shape == (n, 5)
    # a manifest stored as a 0-d bytes array decodes too
    np.savez(tmp_path / "r2.npz", contexts=tr.contexts, targets=tr.targets, article_ids=tr.article_ids,
             manifest=np.asarray(json.dumps(manifest).encode()))
    assert load_sequences(tmp_path / "r2.npz").attrs["manifest"] == manifest


def test_npy_directory_is_memory_mapped(tmp_path, small_splits):
    tr = small_splits[1]["train"]
    d = tmp_path / "big"
    d.mkdir()
    np.save(d / "contexts.npy", tr.contexts)
    np.save(d / "targets.npy", tr.targets)
    np.save(d / "article_ids.npy", tr.article_ids)
    s = load_sequences(d)
    assert s.fmt == "npy_dir" and isinstance(s.contexts, np.memmap) and isinstance(s.targets, np.memmap)
    np.testing.assert_array_equal(s.article_ids, tr.article_ids)
    blocks = list(s.iter_blocks(7))
    assert sum(b[1].shape[0] for b in blocks) == tr.n
    (d / "article_ids.npy").unlink()
    assert load_sequences(d).article_ids is None


def test_python_docs_store_builds_windows_never_across_articles():
    path = FIXTURES / "python_docs" / "train_store.npz"
    s = load_sequences(path, k=5)
    z = np.load(path)
    vec, ids, chunk = z["vectors"], z["article_ids"], z["chunk_index"]
    ctx, tgt = s.extras["context_indices"], s.extras["target_indices"]
    # every window is 6 consecutive chunks of one article, and its vectors are those rows
    rows = np.c_[ctx, tgt]
    assert (ids[rows] == ids[rows[:, :1]]).all()
    assert (np.diff(chunk[rows], axis=1) == 1).all()
    np.testing.assert_array_equal(s.article_ids, ids[tgt])
    np.testing.assert_array_equal(s.contexts, vec[ctx])
    np.testing.assert_array_equal(s.targets, vec[tgt])
    lengths = np.bincount(ids)[np.unique(ids)]
    assert s.n == int(np.maximum(lengths - 5, 0).sum())
    assert s.fmt == "article_store" and s.id_source == "given" and s.k == 5 and s.d == 384
    assert load_sequences(path, k=3).n == int(np.maximum(lengths - 3, 0).sum())


def test_train_and_val_python_docs_stores_share_no_article():
    tr = load_sequences(FIXTURES / "python_docs" / "train_store.npz", split="train")
    va = load_sequences(FIXTURES / "python_docs" / "val_store.npz", split="val")
    assert not set(tr.article_ids.tolist()) & set(va.article_ids.tolist())
    assert tr.contexts.dtype == np.float32 and tr.valid is None and va.valid is None


@pytest.mark.parametrize(
    "name, fmt, ids",
    [
        ("arxiv_train.npz", "arxiv", False),
        ("arxiv_alias_Xy.npz", "arxiv", False),
        ("wikipedia.npz", "wikipedia", False),
        ("rebuilt.npz", "rebuilt", True),
        ("arxiv_store.npz", "article_store", True),
        ("wikipedia_store.npz", "article_store", True),
        ("planted_val.npz", "arxiv", True),  # arXiv keys plus plain `article_ids`
        ("planted_train.npz", "arxiv", True),
    ],
)
def test_bundled_fixtures_read(name, fmt, ids):
    with Recorder():
        s = load_sequences(FIXTURES / name, k=5)
    assert s.fmt == fmt and (s.article_ids is not None) == ids and s.k == 5 and s.d == 32


def test_wikipedia_fixture_with_pickle_gives_article_ids():
    s = load_sequences(FIXTURES / "wikipedia.npz", allow_pickle=True)
    r = load_sequences(FIXTURES / "rebuilt.npz")  # the same windows with ids stored plainly
    np.testing.assert_array_equal(s.article_ids, r.article_ids)
    assert s.attrs["scalars"]["num_sequences"] == s.n


def test_string_id_store_and_index_store_give_the_same_windows():
    a = load_sequences(FIXTURES / "arxiv_store.npz")
    w = load_sequences(FIXTURES / "wikipedia_store.npz")  # same chunks, shuffled rows, int indices
    ka = {tuple(np.round(r, 6)) for r in a.targets.tolist()}
    kw = {tuple(np.round(r, 6)) for r in w.targets.tolist()}
    assert a.n == w.n and ka == kw
    # string ids become stable keys: the same paper gets the same key in every store
    from lvmdiag.data.store import string_key

    z = np.load(FIXTURES / "arxiv_store.npz")
    assert string_key("2101.01000") in set(a.article_ids.tolist())
    assert len(set(a.article_ids.tolist())) == len(set(z["article_ids"].tolist()))


def test_two_split_metadata_goes_with_its_split(tmp_path, small_splits):
    _, sp = small_splits
    tr, va = sp["train"], sp["val"]

    def meta(ids):
        m = np.empty(ids.size, dtype=object)
        m[:] = [{"article_index": int(a)} for a in ids]
        return m

    path = tmp_path / "two.npz"
    np.savez(
        path,
        context_sequences=tr.contexts, target_vectors=tr.targets, metadata=meta(tr.article_ids),
        val_context_sequences=va.contexts, val_target_vectors=va.targets, val_metadata=meta(va.article_ids),
        context_length=np.asarray(5),
    )
    both = load_split_files(path, allow_pickle=True)
    np.testing.assert_array_equal(both["train"].article_ids, tr.article_ids)
    np.testing.assert_array_equal(both["val"].article_ids, va.article_ids)
    assert both["train"].attrs["scalars"] == {"context_length": 5}
    assert len(both["val"].extras["metadata"]) == va.n


@pytest.mark.parametrize("flag", ["crosses_article", "crosses_article_boundary"])
def test_windows_crossing_an_article_boundary_are_excluded_with_a_warning(tmp_path, small_splits, flag):
    tr = small_splits[1]["train"]
    arrays = _wiki_arrays(tr)
    crossing = np.zeros(tr.n, dtype=bool)
    crossing[[0, 3, 7]] = True
    for i, m in enumerate(arrays["metadata"]):
        m.pop("crosses_article")
        m[flag] = bool(crossing[i])
    np.savez(tmp_path / "w.npz", **arrays)
    with Recorder() as msgs:
        s = load_sequences(tmp_path / "w.npz", allow_pickle=True)
    (msg,) = [m for m in msgs if "cross an article boundary" in m]
    assert "3 of" in msg and "w.npz" in msg and "excluded" in msg
    np.testing.assert_array_equal(s.valid, ~crossing)
    assert s.attrs["n_crossing_windows"] == 3


def test_no_crossing_windows_leaves_the_valid_mask_alone(tmp_path, small_splits):
    tr = small_splits[1]["train"]
    np.savez(tmp_path / "w.npz", **_wiki_arrays(tr))
    with Recorder() as msgs:
        s = load_sequences(tmp_path / "w.npz", allow_pickle=True)
    assert s.valid is None and not [m for m in msgs if "cross an article" in m]
