"""Chunk texts beside a store reach the reports: window_text lookups and the leakage near-duplicate table."""

from __future__ import annotations

import numpy as np
import pytest

from lvmdiag.analyzers.leakage import analyze_leakage
from lvmdiag.data.readers import load_sequences
from lvmdiag.data.texts import find_texts, one_line, window_text
from lvmdiag.embed.store_out import write_store


def _store(path, vectors, keys, names, texts):
    per = len(vectors) // len(keys)
    ids = np.repeat(np.asarray(keys, np.int64), per)
    chunk = np.tile(np.arange(per), len(keys))
    write_store(path, vectors.astype(np.float32), ids, chunk, np.asarray(keys, np.int64), names, texts, {"t": 1})


def _unit(rng, n, d=16):
    v = rng.normal(size=(n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_leakage_pairs_show_the_chunk_texts(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow.parquet")
    rng = np.random.default_rng(0)
    train_vec = _unit(rng, 16)
    val_vec = _unit(rng, 8)
    val_vec[5] = train_vec[10] + 0.01 * rng.normal(size=16)  # a near-duplicate of train chunk 10
    val_vec[5] /= np.linalg.norm(val_vec[5])
    train_texts = [f"train chunk {i} | of two articles" for i in range(16)]
    val_texts = [f"val chunk {i}" for i in range(8)]
    _store(tmp_path / f"train{suffix}", train_vec, [11, 12], ["t-a", "t-b"], train_texts)
    _store(tmp_path / f"val{suffix}", val_vec, [13], ["v-a"], val_texts)
    assert find_texts(tmp_path / f"val{suffix}") == tmp_path / "val.texts.jsonl"
    splits = {"train": load_sequences(tmp_path / f"train{suffix}", split="train", k=2),
              "val": load_sequences(tmp_path / f"val{suffix}", split="val", k=2)}
    # window r of val covers rows r..r+2; row 5 is slot 2 (target) of window 3
    assert window_text(splits["val"], 3, 2) == "val chunk 5"
    assert window_text(splits["val"], 3, 0) == "val chunk 3"
    res = analyze_leakage(splits, threshold=0.98)
    top = res.split("val").near_examples[0]
    assert top.cosine > 0.99
    assert top.text == "val chunk 5" and top.train_text == "train chunk 10 | of two articles"
    md = res.to_markdown()
    assert "| val chunk 5 | train chunk 10 \\| of two articles |" in md
    pair = res.to_dict()["splits"][0]["near_examples"][0]  # the JSON keeps the whole text (docs/JSON.md)
    assert (pair["text"], pair["train_text"]) == ("val chunk 5", "train chunk 10 | of two articles")


def test_the_data_reports_leakage_section_shows_the_chunk_texts_too(tmp_path):
    """`lvmdiag data` computes leakage in the engine's single pass; the texts are attached all the same."""
    from lvmdiag import api

    rng = np.random.default_rng(0)
    train_vec, val_vec = _unit(rng, 48), _unit(rng, 24)
    val_vec[5] = train_vec[10] + 0.01 * rng.normal(size=16)
    val_vec[5] /= np.linalg.norm(val_vec[5])
    _store(tmp_path / "train.npz", train_vec, [11, 12, 14, 15], ["a", "b", "c", "d"], [f"train chunk {i}" for i in range(48)])
    _store(tmp_path / "val.npz", val_vec, [13, 16], ["e", "f"], [f"val chunk {i}" for i in range(24)])
    _store(tmp_path / "bare.npz", val_vec, [13, 16], ["e", "f"], None)
    res = api.data(tmp_path / "train.npz", tmp_path / "val.npz", k=2, n_permutations=9, n_bootstrap=9)
    top = res.leakage.split("val").near_examples[0]
    assert (top.text, top.train_text) == ("val chunk 5", "train chunk 10")
    assert "| val chunk 5 | train chunk 10 |" in res.to_markdown()
    bare = api.data(tmp_path / "train.npz", tmp_path / "bare.npz", k=2, n_permutations=9, n_bootstrap=9)
    assert bare.leakage.split("val").near_examples[0].text is None  # no texts file beside the val store
    assert "| val chunk 5 |" not in bare.to_markdown()


def test_no_texts_file_means_no_text_column(tmp_path):
    rng = np.random.default_rng(1)
    _store(tmp_path / "a.npz", _unit(rng, 8), [1], ["a"], None)
    _store(tmp_path / "b.npz", _unit(rng, 8), [2], ["b"], None)
    splits = {"train": load_sequences(tmp_path / "a.npz", split="train", k=2),
              "val": load_sequences(tmp_path / "b.npz", split="val", k=2)}
    assert window_text(splits["val"], 0, 0) is None
    md = analyze_leakage(splits).to_markdown()
    assert "train text" not in md and "| row | slot | train row | train slot | cosine | near-dup |" in md


def test_one_line():
    assert one_line("a\n\n b  c") == "a b c"
    assert one_line(None) == "—"
    cut = one_line("word " * 40, width=20)
    assert len(cut) == 20 and cut.endswith("…")
