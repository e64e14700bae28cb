"""Parquet output: round trip, bounded row groups, deterministic bytes; resplit --format parquet."""

from __future__ import annotations

import time

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from lvmdiag.data import load_sequences, save_sequences  # noqa: E402
from lvmdiag.data.parquet_writer import ParquetSink, write_sequences_parquet  # noqa: E402
from lvmdiag.resplit import resplit  # noqa: E402
from lvmdiag.synthetic import make_splits, make_store  # noqa: E402


@pytest.fixture(scope="module")
def splits():
    store = make_store(n_articles=40, d=10, rho=0.75, length=(8, 16), rng=9)
    return make_splits(store, k=4, ratios=(0.5, 0.3, 0.2), names=("train", "val", "ood"), by="window", rng=3)


def test_round_trip_and_bounded_row_groups(splits, tmp_path):
    s = splits["train"]
    s = type(s)(**{**s.__dict__, "extras": {"target_indices": np.arange(s.n, dtype=np.int64),
                                            "context_indices": np.arange(s.n * 4, dtype=np.int64).reshape(s.n, 4)}})
    path = write_sequences_parquet(s, tmp_path / "t.parquet", row_group_rows=37)
    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [37] * (s.n // 37) + ([s.n % 37] if s.n % 37 else [])
    schema = pq.read_schema(path)
    assert schema.field("contexts").type == pa.list_(pa.list_(pa.float32(), 10), 4)
    assert schema.field("targets").type == pa.list_(pa.float32(), 10)
    back = load_sequences(path)
    assert back.fmt == "parquet" and back.contexts.n_blocks == len(sizes)
    assert np.array_equal(np.asarray(back.contexts), s.contexts)
    assert np.array_equal(np.asarray(back.targets), s.targets)
    assert np.array_equal(back.article_ids, s.article_ids)
    assert np.array_equal(back.extras["context_indices"], s.extras["context_indices"])
    assert np.array_equal(back.extras["target_indices"], s.extras["target_indices"])
    # written back in its own form by default (streamed from the lazy read)
    again = save_sequences(back, tmp_path / "again.parquet")
    assert np.array_equal(np.asarray(load_sequences(again).contexts), s.contexts)


def test_same_rows_give_same_bytes(splits, tmp_path):
    s = splits["val"]
    a = save_sequences(s, tmp_path / "a.parquet", fmt="parquet").read_bytes()
    time.sleep(1.1)  # nothing time-dependent may reach the file
    b = save_sequences(s, tmp_path / "b.parquet", fmt="parquet").read_bytes()
    assert a == b
    assert b"ARROW:schema" in a  # the schema is stored (pyarrow reads types back) ...
    meta = pq.ParquetFile(tmp_path / "a.parquet").metadata
    assert set(meta.metadata or {}) == {b"ARROW:schema"}  # ... and no other key-value metadata


def test_sink_splits_blocks_into_exact_row_groups(tmp_path):
    rng = np.random.default_rng(0)
    c, t = rng.standard_normal((50, 2, 3)).astype(np.float32), rng.standard_normal((50, 3)).astype(np.float32)
    with ParquetSink(tmp_path / "s.parquet", 2, 3, row_group_rows=8) as sink:
        for a, b in ((0, 5), (5, 19), (19, 20), (20, 50)):
            sink.write(c[a:b], t[a:b])
    meta = pq.ParquetFile(tmp_path / "s.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [8] * 6 + [2]
    back = load_sequences(tmp_path / "s.parquet")
    assert np.array_equal(np.asarray(back.contexts), c) and back.article_ids is None


def _tree(root):
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


def test_resplit_format_parquet_verified_and_deterministic(splits, tmp_path):
    inputs = []
    for name, s in splits.items():
        inputs.append(save_sequences(s, tmp_path / "in" / f"{name}.npz"))
    kw = dict(seed=4, analyses=False, stratify=("length",), ratios=(0.8, 0.1, 0.1), out_format="parquet", block_rows=29)
    res = resplit(inputs, out_dir=tmp_path / "a", **kw)
    assert res.fmt == "parquet (from rebuilt inputs)" and res.verification.passed
    assert sorted(res.files.values()) == ["ood.parquet", "train.parquet", "val.parquet"]
    resplit(inputs, out_dir=tmp_path / "b", **kw)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    outs = {n: load_sequences(tmp_path / "a" / f"{n}.parquet") for n in ("train", "val", "ood")}
    assert sum(o.n for o in outs.values()) == sum(s.n for s in splits.values())
    ids = [set(np.unique(o.article_ids).tolist()) for o in outs.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    # Parquet inputs are written as Parquet by default, and can be turned into .npz
    again = resplit([tmp_path / "a" / "train.parquet"], out_dir=tmp_path / "c", seed=1, analyses=False,
                    stratify="none", ratios=(0.5, 0.5), names=("x", "y"))
    assert again.fmt == "parquet" and (tmp_path / "c" / "x.parquet").is_file()
    npz = resplit([tmp_path / "a" / "train.parquet"], out_dir=tmp_path / "d", seed=1, analyses=False,
                  stratify="none", ratios=(0.5, 0.5), names=("x", "y"), out_format="npz")
    assert npz.fmt == "rebuilt (from parquet inputs)" and (tmp_path / "d" / "x.npz").is_file()


def test_resplit_of_a_parquet_article_store_writes_parquet_by_default(tmp_path):
    """Columnar article stores (not only window files) are resplit to Parquet unless told otherwise."""
    store = make_store(n_articles=20, d=8, rho=0.75, length=(8, 12), rng=4)
    table = pa.table({"embedding": pa.FixedSizeListArray.from_arrays(pa.array(store.vectors.astype(np.float32).ravel()), 8),
                      "article_id": pa.array(store.article_ids), "chunk_index": pa.array(store.chunk_index)})
    pq.write_table(table, tmp_path / "store.parquet", row_group_size=50)
    res = resplit([tmp_path / "store.parquet"], out_dir=tmp_path / "o", seed=1, analyses=False, k=3,
                  stratify="none", ratios=(0.5, 0.5), names=("x", "y"))
    assert sorted(res.files.values()) == ["x.parquet", "y.parquet"] and res.verification.passed
    outs = [load_sequences(tmp_path / "o" / f) for f in ("x.parquet", "y.parquet")]
    assert sum(o.n for o in outs) == load_sequences(tmp_path / "store.parquet", k=3).n


def test_resplit_cli_format_option(splits, tmp_path):
    from typer.testing import CliRunner

    from lvmdiag_cli.app import app

    inputs = [str(save_sequences(s, tmp_path / f"{n}.npz")) for n, s in splits.items()]
    r = CliRunner().invoke(app, ["resplit", *inputs, "--out", str(tmp_path / "o"), "--format", "parquet",
                                 "--no-analyses", "--quiet", "--stratify", "none"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "train.parquet").is_file()
    r = CliRunner().invoke(app, ["resplit", *inputs, "--out", str(tmp_path / "p"), "--format", "hdf5", "--quiet"])
    assert r.exit_code == 2 and "output format must be one of npz, npy, parquet" in r.output
