"""Article stores in the three forms: codes, names, chunk order and stable keys."""

from __future__ import annotations

import numpy as np

from lvmdiag.data import load_article_store, load_sequences
from lvmdiag.data.store import string_key

from data_helpers import FIXTURES


def test_python_docs_form():
    st = load_article_store(FIXTURES / "python_docs" / "val_store.npz")
    z = np.load(FIXTURES / "python_docs" / "val_store.npz")
    assert st.fmt == "python_docs_store" and st.d == 384 and st.vectors.dtype == np.float32
    assert st.n_articles == np.unique(z["article_ids"]).size
    np.testing.assert_array_equal(st.article_keys[st.article_ids], z["article_ids"])
    # names come from the id-indexed name table
    for code in range(st.n_articles):
        assert st.article_names[code] == z["article_names"][st.article_keys[code]]
    assert set(st.article_names) <= set(z["article_names"])


def test_wikipedia_form_restores_chunk_order_from_shuffled_rows():
    w = load_article_store(FIXTURES / "wikipedia_store.npz")
    assert w.fmt == "wikipedia_store" and w.chunk_index is not None
    assert all(name.startswith("Article ") for name in w.article_names)
    s = load_sequences(FIXTURES / "wikipedia_store.npz")
    rows = np.c_[s.extras["context_indices"], s.extras["target_indices"]]
    assert (np.diff(w.chunk_index[rows], axis=1) == 1).all()
    assert (w.article_ids[rows] == w.article_ids[rows[:, :1]]).all()


def test_arxiv_form_string_ids_row_order_and_stable_keys():
    a = load_article_store(FIXTURES / "arxiv_store.npz")
    z = np.load(FIXTURES / "arxiv_store.npz")
    assert a.fmt == "arxiv_store" and a.chunk_index is None
    assert sorted(a.article_names) == sorted(set(z["article_ids"].tolist()))
    for code, name in enumerate(a.article_names):
        assert a.article_keys[code] == string_key(str(name))
    s = load_sequences(FIXTURES / "arxiv_store.npz", k=4)
    rows = np.c_[s.extras["context_indices"], s.extras["target_indices"]]
    assert (np.diff(rows, axis=1) == 1).all()  # row order is chunk order
    assert (z["article_ids"][rows] == z["article_ids"][rows[:, :1]]).all()
    assert "concept_texts" in a.extras


def test_string_key_is_stable():
    assert string_key("2101.01000") == string_key("2101.01000") != string_key("2101.01001")
    assert 0 <= string_key("x") < 2**63
