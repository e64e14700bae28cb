"""save_sequences writes the form it read: round trips for every form, deterministic bytes, atomic."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from lvmdiag.data import load_sequences, load_split_files
from lvmdiag.data.writers import save_sequences, save_split_files, write_npz
from lvmdiag.errors import InputError

from data_helpers import FIXTURES, Recorder

ROWS = np.array([9, 0, 3, 4, 17, 2])


def _assert_same_windows(a, b):
    np.testing.assert_array_equal(np.asarray(a.contexts), np.asarray(b.contexts))
    np.testing.assert_array_equal(np.asarray(a.targets), np.asarray(b.targets))
    if a.article_ids is None:
        assert b.article_ids is None
    else:
        np.testing.assert_array_equal(a.article_ids, b.article_ids)


@pytest.mark.parametrize("name", ["arxiv_train.npz", "arxiv_alias_Xy.npz", "rebuilt.npz", "planted_val.npz"])
def test_npz_forms_round_trip_with_same_keys(tmp_path, name):
    with Recorder():
        s = load_sequences(FIXTURES / name)
    sub = s.subset(ROWS)
    out = save_sequences(sub, tmp_path / "out.npz")
    with Recorder():
        back = load_sequences(out)
    _assert_same_windows(sub, back)
    assert back.fmt == s.fmt
    assert list(np.load(out).keys()) == list(np.load(FIXTURES / name).keys())
    for key, value in sub.extras.items():
        np.testing.assert_array_equal(back.extras[key], value)
    if "manifest" in s.attrs:
        assert back.attrs["manifest"] == s.attrs["manifest"]
        assert np.load(out)["manifest"].tobytes() == np.load(FIXTURES / name)["manifest"].tobytes()


def test_wikipedia_round_trip_keeps_metadata_texts_and_scalars(tmp_path):
    s = load_sequences(FIXTURES / "wikipedia.npz", allow_pickle=True)
    sub = s.subset(ROWS)
    out = save_sequences(sub, tmp_path / "w.npz")
    back = load_sequences(out, allow_pickle=True)
    _assert_same_windows(sub, back)
    assert back.fmt == "wikipedia"
    assert [m["target_cpe_id"] for m in back.extras["metadata"]] == [m["target_cpe_id"] for m in sub.extras["metadata"]]
    np.testing.assert_array_equal(back.extras["context_texts"], sub.extras["context_texts"])
    assert back.attrs["scalars"]["num_sequences"] == len(ROWS)  # updated to the rows written
    assert back.attrs["scalars"]["source_dataset"] == "synthetic-wikipedia"


def test_writing_what_was_not_read_warns(tmp_path):
    with Recorder():
        s = load_sequences(FIXTURES / "wikipedia.npz")
    with Recorder() as msgs:
        save_sequences(s, tmp_path / "w.npz")
    assert any("`metadata`" in m and "not written" in m and "--allow-pickle" in m for m in msgs)


def test_two_split_round_trips(tmp_path):
    both = load_split_files(FIXTURES / "two_split.npz")
    out = save_sequences(both["val"].subset([0, 1, 2]), tmp_path / "val.npz")
    back = load_sequences(out)
    assert back.fmt == "wikipedia" and set(np.load(out).keys()) == {"context_sequences", "target_vectors"}
    _assert_same_windows(both["val"].subset([0, 1, 2]), back)
    out2 = save_split_files(both, tmp_path / "two.npz")
    again = load_split_files(out2)
    assert list(again) == ["train", "val"]
    for name in both:
        _assert_same_windows(both[name], again[name])
    assert out2.read_bytes() == (FIXTURES / "two_split.npz").read_bytes()


def test_store_windows_are_written_in_rebuilt_form(tmp_path):
    s = load_sequences(FIXTURES / "python_docs" / "val_store.npz")
    out = save_sequences(s.subset(np.arange(0, s.n, 3)), tmp_path / "r.npz")
    back = load_sequences(out)
    assert back.fmt == "rebuilt" and back.attrs["manifest"]["built_from"]["fmt"] == "python_docs_store"
    _assert_same_windows(s.subset(np.arange(0, s.n, 3)), back)
    np.testing.assert_array_equal(back.extras["target_indices"], s.extras["target_indices"][::3])


def test_npy_dir_round_trip_and_replace(tmp_path):
    s = load_sequences(FIXTURES / "rebuilt.npz")
    out = save_sequences(s, tmp_path / "d", fmt="npy_dir")
    back = load_sequences(out)
    assert back.fmt == "npy_dir" and isinstance(back.contexts, np.memmap)
    _assert_same_windows(s, back)
    np.testing.assert_array_equal(back.extras["context_indices"], s.extras["context_indices"])
    save_sequences(back.subset([1, 2]), tmp_path / "d2", fmt="npy_dir")
    save_sequences(load_sequences(tmp_path / "d2"), tmp_path / "d")  # replaces the old directory
    assert load_sequences(tmp_path / "d").n == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "d2"]  # no temp or backup left


def test_bytes_are_deterministic(tmp_path, monkeypatch):
    s = load_sequences(FIXTURES / "rebuilt.npz").subset(ROWS)
    a = save_sequences(s, tmp_path / "a.npz").read_bytes()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 86400 * 400)  # another day and year
    b = save_sequences(s, tmp_path / "b.npz").read_bytes()
    assert a == b
    # and the archive is an ordinary npz (np.load reads it)
    z = np.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(z["contexts"], s.contexts)


def test_write_is_atomic(tmp_path, monkeypatch):
    import lvmdiag.data.writers as writers

    s = load_sequences(FIXTURES / "rebuilt.npz")
    target = tmp_path / "out.npz"
    target.write_bytes(b"old")

    def broken(path, arrays):
        with open(path, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(writers, "write_npz", broken)
    with pytest.raises(OSError):
        save_sequences(s, target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]


def test_unknown_form_refused(tmp_path):
    s = load_sequences(FIXTURES / "rebuilt.npz")
    with pytest.raises(InputError, match="cannot write sequences in form 'hdf5'"):
        save_sequences(s, tmp_path / "x", fmt="hdf5")


def test_write_npz_streams_large_arrays_in_blocks(tmp_path, monkeypatch):
    import lvmdiag.data.validate as validate

    monkeypatch.setattr(validate, "BLOCK_BYTES", 1024)
    x = np.arange(4000, dtype=np.float32).reshape(1000, 4)
    write_npz(tmp_path / "x.npz", {"x": x, "s": np.asarray(3), "o": np.array([{"a": 1}], dtype=object)})
    z = np.load(tmp_path / "x.npz", allow_pickle=True)
    np.testing.assert_array_equal(z["x"], x)
    assert z["s"] == 3 and z["o"][0] == {"a": 1}
    assert json.dumps(sorted(z.files)) == '["o", "s", "x"]'


def test_npy_dir_cannot_hold_object_extras_and_says_so(tmp_path):
    s = load_sequences(FIXTURES / "wikipedia.npz", allow_pickle=True)
    with Recorder() as msgs:
        out = save_sequences(s, tmp_path / "d", fmt="npy_dir")
    assert any("`metadata`" in m and "not written" in m for m in msgs)
    assert sorted(p.name for p in out.iterdir()) == ["article_ids.npy", "contexts.npy", "targets.npy"]
    np.testing.assert_array_equal(load_sequences(out).article_ids, s.article_ids)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(
    arrays=st.dictionaries(
        st.sampled_from(["contexts", "targets", "a", "long_name_" * 3, "x"]),
        hnp.arrays(
            dtype=st.sampled_from([np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_]),
            shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_write_npz_round_trips_any_array_aligned(tmp_path_factory, arrays):
    from lvmdiag.data._npz import NpzArchive

    path = tmp_path_factory.mktemp("h") / "x.npz"
    write_npz(path, arrays)
    z = np.load(path)
    with NpzArchive(path) as arc:
        for key, arr in arrays.items():
            np.testing.assert_array_equal(z[key], arr)
            got = arc.read(key)
            np.testing.assert_array_equal(got, arr)
            assert got.dtype == arr.dtype and got.shape == arr.shape
            if isinstance(got, np.memmap):
                assert got.offset % 64 == 0
