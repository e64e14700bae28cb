"""Columnar inputs: store layouts, column naming, validation counts, and one-line errors on bad input."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from arrow_helpers import vector_array, window_table  # noqa: E402
from data_helpers import Recorder  # noqa: E402

from lvmdiag.data import load_article_store, load_sequences, load_split_files  # noqa: E402
from lvmdiag.data.arrow_formats import parse_columns, set_default_columns  # noqa: E402
from lvmdiag.errors import InputError  # noqa: E402
from lvmdiag.synthetic import make_splits, make_store  # noqa: E402


@pytest.fixture(scope="module")
def store():
    return make_store(n_articles=12, d=8, length=(7, 10), zero_rows=0.03, rng=21)


def store_table(st, vec="embedding", ids="doc_id", pos="position", fixed=True, string_ids=False):
    cols = {vec: vector_array(pa, st.vectors, fixed)}
    if ids:
        cols[ids] = pa.array([f"doc-{i}" for i in st.article_ids]) if string_ids else pa.array(st.article_ids)
    if pos:
        cols[pos] = pa.array(st.chunk_index)
    cols["text"] = pa.array(["t"] * st.vectors.shape[0])
    return pa.table(cols)


def test_store_parquet_matches_npz_store(store, tmp_path):
    pq.write_table(store_table(store), tmp_path / "s.parquet", row_group_size=16)
    np.savez(tmp_path / "s.npz", vectors=store.vectors, article_ids=store.article_ids, chunk_index=store.chunk_index)
    with Recorder() as warn_pq:  # the same validation warnings as the npz store
        a = load_sequences(tmp_path / "s.parquet", k=3)
    with Recorder() as warn_npz:
        b = load_sequences(tmp_path / "s.npz", k=3)
    assert a.fmt == b.fmt == "article_store"
    assert np.array_equal(np.asarray(a.contexts), b.contexts) and np.array_equal(np.asarray(a.targets), b.targets)
    assert np.array_equal(a.article_ids, b.article_ids)
    assert np.array_equal(a.valid, b.valid) and a.attrs["validation"]["n_zero"] == b.attrs["validation"]["n_zero"] > 0
    assert len(warn_pq) == len(warn_npz) and any("all-zero" in m for m in warn_pq)
    st = load_article_store(tmp_path / "s.parquet")
    assert st.n_chunks == store.vectors.shape[0] and st.n_articles == 12 and st.d == 8


def test_store_rows_shuffled_and_string_ids(store, tmp_path):
    """Rows in any order (chunk positions given), string doc ids hashed to stable keys."""
    perm = np.random.default_rng(0).permutation(store.vectors.shape[0])
    table = store_table(store, string_ids=True).take(pa.array(perm))
    pq.write_table(table, tmp_path / "shuffled.parquet", row_group_size=10)
    s = load_sequences(tmp_path / "shuffled.parquet", k=3)
    ref = load_sequences(_npz(store, tmp_path), k=3)
    assert s.n == ref.n
    # the same multiset of windows (order differs: windows follow the file)
    key = lambda x: np.sort(np.asarray(x.targets).round(6).view(np.int32).sum(axis=1))  # noqa: E731
    assert np.array_equal(key(s), key(ref))
    assert sorted(s.attrs["article_names"].values()) == sorted(f"doc-{i}" for i in range(12))
    assert s.attrs["columnar"]["in_memory"]  # rows of an article are scattered: vectors read once into memory
    pq.write_table(store_table(store, string_ids=True), tmp_path / "grouped.parquet", row_group_size=10)
    grouped = load_sequences(tmp_path / "grouped.parquet", k=3)
    assert "in_memory" not in grouped.attrs["columnar"]  # grouped by article: gathered lazily


def _npz(store, tmp_path):
    p = tmp_path / "ref.npz"
    np.savez(p, vectors=store.vectors, article_ids=store.article_ids, chunk_index=store.chunk_index)
    return p


def test_column_names_given(store, tmp_path):
    pq.write_table(store_table(store, vec="e5_large", ids="paper", pos=None), tmp_path / "odd.parquet")
    with pytest.raises(InputError, match=r"no contexts/targets columns and no vector column \(looked for embedding, .*--columns vector=NAME,id=NAME"):
        load_sequences(tmp_path / "odd.parquet")
    s = load_sequences(tmp_path / "odd.parquet", k=3, columns={"vector": "e5_large", "id": "paper"})
    assert s.attrs["columnar"]["columns"] == {"vector": "e5_large", "id": "paper", "position": None}
    with pytest.raises(InputError, match="has no column `nope`"):
        load_sequences(tmp_path / "odd.parquet", columns={"vector": "nope"})
    assert parse_columns("vector=e5_large, id=paper") == {"vector": "e5_large", "id": "paper"}
    with pytest.raises(InputError, match="unknown column role 'vec'"):
        parse_columns("vec=x")
    set_default_columns({"vector": "e5_large", "id": "paper"})
    try:
        assert load_sequences(tmp_path / "odd.parquet", k=3).n == s.n
    finally:
        set_default_columns(None)


def test_missing_id_column(store, tmp_path):
    pq.write_table(store_table(store, ids=None), tmp_path / "noid.parquet")
    with pytest.raises(InputError, match=r"noid.parquet has no article id column \(looked for article_id, "):
        load_article_store(tmp_path / "noid.parquet")


def test_two_columns_that_could_be_the_vectors_are_refused_not_guessed(store, tmp_path):
    table = store_table(store, vec="embedding")
    table = table.append_column("vector", vector_array(pa, store.vectors[::-1].copy(), True))
    pq.write_table(table, tmp_path / "both.parquet")
    with pytest.raises(InputError, match=r"both.parquet has 2 columns that could be the vector column \(`embedding`, "
                                         r"`vector`\); say which with the global option `lvmdiag --columns vector=NAME"):
        load_article_store(tmp_path / "both.parquet")
    chosen = load_article_store(tmp_path / "both.parquet", columns={"vector": "vector"})
    assert np.array_equal(np.asarray(chosen.vectors), store.vectors[::-1])


def test_float_ids_and_null_ids_refused(store, tmp_path):
    t = store_table(store).set_column(1, "doc_id", pa.array(store.article_ids.astype(np.float64)))
    pq.write_table(t, tmp_path / "fid.parquet")
    with pytest.raises(InputError, match=r"article id column `doc_id` in .*fid.parquet holds float64 values"):
        load_sequences(tmp_path / "fid.parquet", k=3)
    ids = pa.array([None] + store.article_ids[1:].tolist(), pa.int64())
    pq.write_table(store_table(store).set_column(1, "doc_id", ids), tmp_path / "nid.parquet")
    with pytest.raises(InputError, match=r"column `doc_id` in .*nid.parquet has 1 nulls \(first in row 0\)"):
        load_sequences(tmp_path / "nid.parquet", k=3)


def test_ragged_list_column(tmp_path):
    vals = [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.5, 0.5], [0.1, 0.1, 0.9]]
    pq.write_table(pa.table({"embedding": pa.array(vals, pa.list_(pa.float32())), "article_id": [0, 0, 0, 0]}),
                   tmp_path / "ragged.parquet")
    with pytest.raises(InputError, match=r"`embedding` in .*ragged.parquet is ragged: row 2 has a list of length 2 where earlier rows have 3"):
        load_sequences(tmp_path / "ragged.parquet", k=1)


def test_null_vectors(tmp_path):
    vals = [[0.1, 0.2], None, [0.3, 0.4], [0.5, 0.1]]
    pq.write_table(pa.table({"embedding": pa.array(vals, pa.list_(pa.float32(), 2)), "article_id": [0] * 4}),
                   tmp_path / "nulls.parquet")
    with pytest.raises(InputError, match=r"`embedding` in .*nulls.parquet has 1 null vectors \(first in row 1\)"):
        load_sequences(tmp_path / "nulls.parquet", k=1)
    inner = [[0.1, None], [0.3, 0.4], [0.5, 0.1]]
    pq.write_table(pa.table({"embedding": pa.array(inner, pa.list_(pa.float32())), "article_id": [0] * 3}),
                   tmp_path / "inner.parquet")
    with pytest.raises(InputError, match=r"null values inside vectors \(first in row 0\)"):
        load_sequences(tmp_path / "inner.parquet", k=1)


def test_non_float_vector_column(tmp_path):
    ints = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(12, dtype=np.int32)), 3)
    pq.write_table(pa.table({"embedding": ints, "article_id": [0] * 4}), tmp_path / "ints.parquet")
    with pytest.raises(InputError, match=r"column `embedding` in .*ints.parquet holds int32 values, not floats"):
        load_sequences(tmp_path / "ints.parquet", k=1)


def test_float64_and_float16_accepted(store, tmp_path):
    t = pa.table({"embedding": vector_array(pa, store.vectors.astype(np.float64)), "article_id": store.article_ids,
                  "chunk_index": store.chunk_index})
    pq.write_table(t, tmp_path / "f64.parquet")
    s = load_sequences(tmp_path / "f64.parquet", k=3)
    assert s.contexts.dtype == np.float64
    assert next(s.iter_blocks())[1].dtype == np.float32


def test_shard_errors_name_the_shard_its_own_row_and_a_column_it_lacks(store, tmp_path):
    """Rows in a shard's error count within that shard; a shard without the position (or id) column
    the first shard has is one line, not an IndexError."""
    d = tmp_path / "rag"
    d.mkdir()
    good = [[0.1, 0.2, 0.3]] * 6
    pq.write_table(pa.table({"embedding": pa.array(good, pa.list_(pa.float32())), "article_id": [0] * 6}),
                   d / "part-0.parquet", row_group_size=4)
    bad = [[0.1, 0.2, 0.3]] * 5 + [[0.5, 0.5]]
    pq.write_table(pa.table({"embedding": pa.array(bad, pa.list_(pa.float32())), "article_id": [1] * 6}),
                   d / "part-1.parquet", row_group_size=4)
    with pytest.raises(InputError, match=r"`embedding` in .*rag/part-1.parquet is ragged: row 5 has a list of length 2"):
        load_sequences(d, k=1)
    n = tmp_path / "nopos"
    n.mkdir()
    pq.write_table(store_table(store), n / "part-0.parquet")
    other = make_store(n_articles=3, d=8, length=8, first_article_id=100, rng=1)
    pq.write_table(store_table(other, pos=None), n / "part-1.parquet")
    with pytest.raises(InputError, match=r"shard .*nopos/part-1.parquet has no column `position` \(the first shard has it\)"):
        load_sequences(n, k=3)
    ids = pa.array([5, None, 5, 5, 5, 5], pa.int64())
    pq.write_table(pa.table({"embedding": pa.array(good, pa.list_(pa.float32())), "article_id": ids}),
                   d / "part-1.parquet", row_group_size=4)
    with pytest.raises(InputError, match=r"column `article_id` in .*rag/part-1.parquet has 1 nulls \(first in row 1\)"):
        load_sequences(d, k=1)


def test_other_data_files_beside_parquet_shards_are_named_as_not_read(store, tmp_path):
    d = tmp_path / "mixed"
    d.mkdir()
    pq.write_table(store_table(store), d / "part-0.parquet")
    np.savez(d / "extra.npz", vectors=store.vectors)
    with Recorder() as msgs:
        seqs = load_sequences(d, k=3)
    assert seqs.n > 0
    assert any("read as 1 Parquet shard(s); 1 other data file(s) in it are not read (extra.npz)" in m for m in msgs)


def test_shard_with_another_dimension(store, tmp_path):
    d = tmp_path / "shards"
    d.mkdir()
    pq.write_table(store_table(store), d / "part-0.parquet")
    other = make_store(n_articles=3, d=6, length=8, first_article_id=100, rng=1)
    pq.write_table(store_table(other), d / "part-1.parquet")
    with pytest.raises(InputError, match=r"shard .*part-1.parquet has `embedding` of shape \(6,\) per row but .*part-0.parquet has \(8,\)"):
        load_sequences(d, k=3)
    # variable-length lists: found when the shard's rows are read
    v = tmp_path / "varshards"
    v.mkdir()
    pq.write_table(store_table(store, fixed=False), v / "part-0.parquet")
    pq.write_table(store_table(other, fixed=False), v / "part-1.parquet")
    with pytest.raises(InputError, match=r"`embedding` in .*part-1.parquet has D = 6 but earlier rows have D = 8"):
        load_sequences(v, k=3)


def test_window_file_missing_targets_and_wrong_depth(store, tmp_path):
    s = make_splits(store, k=3, ratios=(1.0,), names=("train",))["train"]
    t = window_table(pa, s).drop(["targets"])
    pq.write_table(t, tmp_path / "notgt.parquet")
    with pytest.raises(InputError, match=r"has `contexts` but no targets column"):
        load_sequences(tmp_path / "notgt.parquet")
    bad = pa.table({"contexts": vector_array(pa, np.asarray(s.targets)), "targets": vector_array(pa, np.asarray(s.targets))})
    pq.write_table(bad, tmp_path / "flat.parquet")
    with pytest.raises(InputError, match=r"column `contexts` in .*must hold \(N, K, D\)"):
        load_sequences(tmp_path / "flat.parquet")


def test_corrupt_and_empty_files(tmp_path):
    (tmp_path / "cut.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"cut.parquet cannot be read as Parquet"):
        load_sequences(tmp_path / "cut.parquet")
    (tmp_path / "x.arrow").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"x.arrow cannot be read as an Arrow IPC"):
        load_sequences(tmp_path / "x.arrow")
    (tmp_path / "x.safetensors").write_bytes(b"\x01")
    with pytest.raises(InputError, match=r"x.safetensors cannot be read as safetensors"):
        load_sequences(tmp_path / "x.safetensors")


def test_hf_dataset_dict_splits(store, tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    splits = make_splits(store, k=3, ratios=(0.7, 0.3), names=("train", "validation"), rng=2)
    dd = datasets.DatasetDict({n: datasets.Dataset.from_dict({"contexts": np.asarray(s.contexts), "targets": np.asarray(s.targets),
                                                              "article_id": s.article_ids}) for n, s in splits.items()})
    dd.save_to_disk(str(tmp_path / "dd"))
    got = load_split_files(tmp_path / "dd")
    assert list(got) == ["train", "validation"]
    for n, s in splits.items():
        assert np.array_equal(np.asarray(got[n].targets), s.targets) and got[n].fmt == "hf_dataset"
    assert load_sequences(tmp_path / "dd", split="validation").n == splits["validation"].n
    with pytest.raises(InputError, match="holds 2 splits"):
        load_sequences(tmp_path / "dd")


def test_safetensors_store_and_bad_dtype(store, tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    st.save_file({"vectors": store.vectors, "article_ids": store.article_ids, "chunk_index": store.chunk_index},
                 str(tmp_path / "s.safetensors"))
    a = load_sequences(tmp_path / "s.safetensors", k=3)
    b = load_sequences(_npz(store, tmp_path), k=3)
    assert np.array_equal(np.asarray(a.contexts), b.contexts) and np.array_equal(a.article_ids, b.article_ids)
    st.save_file({"contexts": np.zeros((2, 3, 4), np.int32), "targets": np.zeros((2, 4), np.float32)},
                 str(tmp_path / "int.safetensors"))
    with pytest.raises(InputError, match=r"`contexts` in .*int.safetensors must be a float array; got int32"):
        load_sequences(tmp_path / "int.safetensors")


def test_missing_pyarrow_is_one_line(store, tmp_path, monkeypatch):
    pq.write_table(store_table(store), tmp_path / "s.parquet")
    for mod in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.setitem(sys.modules, mod, None)
    with pytest.raises(InputError, match=r"s.parquet is a Parquet/Arrow input and reading it needs pyarrow: install lvmdiag\[parquet\]"):
        load_sequences(tmp_path / "s.parquet")


def test_cli_bad_input_one_line_and_columns_option(store, tmp_path):
    from typer.testing import CliRunner

    from lvmdiag_cli.app import app

    runner = CliRunner()
    vals = [[0.1, 0.2, 0.3]] * 3 + [[0.5, 0.5]]
    pq.write_table(pa.table({"embedding": pa.array(vals, pa.list_(pa.float32())), "article_id": [0] * 4}),
                   tmp_path / "ragged.parquet")
    r = runner.invoke(app, ["bias", "--train", str(tmp_path / "ragged.parquet"), "--quiet"])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "ragged" in lines[0], r.output
    assert "Traceback" not in r.output
    pq.write_table(store_table(store, vec="e5", ids="paper"), tmp_path / "odd.parquet")
    r = runner.invoke(app, ["bias", "--train", str(tmp_path / "odd.parquet"), "--k", "3", "--quiet"])
    assert r.exit_code == 2 and "--columns vector=NAME" in r.output
    r = runner.invoke(app, ["--columns", "vector=e5,id=paper", "bias", "--train", str(tmp_path / "odd.parquet"), "--k", "3",
                            "--quiet", "--n-resamples", "20", "--no-direction", "--json", str(tmp_path / "b.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "b.json").read_text())["n_windows"] > 0
    r = runner.invoke(app, ["--columns", "vec=e5", "bias", "--train", str(tmp_path / "odd.parquet")])
    assert r.exit_code == 2 and "unknown column role" in r.output
