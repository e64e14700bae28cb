"""The bias report names the articles with the most extreme mean Δ, and quotes their first chunk."""

from __future__ import annotations

import numpy as np

from lvmdiag.analyzers.bias_results import N_EXTREMES
from lvmdiag.analyzers.temporal_bias import analyze_bias, compare_bias
from lvmdiag.analyzers.window_cosines import window_cosines, window_delta
from lvmdiag.data.readers import load_sequences
from lvmdiag.embed.store_out import write_store
from lvmdiag.synthetic import make_splits, make_store


def _slow_extremes(seq):
    """Per-article mean Δ the obvious way, lowest and highest articles with their first rows."""
    wc = window_cosines(np.asarray(seq.contexts), np.asarray(seq.targets))
    delta = window_delta(wc)
    out = []
    for a in np.unique(seq.article_ids):
        rows = np.flatnonzero((seq.article_ids == a) & wc.ok)
        out.append((float(delta[rows].mean()), int(rows[0]), int(a), rows.size))
    out.sort()
    return out[:N_EXTREMES], out[::-1][:N_EXTREMES]


def test_extremes_match_a_per_article_loop_and_name_the_articles():
    store = make_store(n_articles=12, d=8, rho=0.8, article_rho_sd=0.2, rng=1)
    seq = make_splits(store, k=3, ratios=(1.0,), names=("train",), rng=0)["train"]
    res = analyze_bias(seq, n_resamples=20, rng=0)
    low, high = _slow_extremes(seq)
    got = res.per_article_delta
    for mine, want in ((got.lowest, low), (got.highest, high)):
        assert [e.row for e in mine] == [w[1] for w in want]
        assert [e.article for e in mine] == [f"article {w[2]}" for w in want]
        assert [e.windows for e in mine] == [w[3] for w in want]
        np.testing.assert_allclose([e.mean_delta for e in mine], [w[0] for w in want], rtol=1e-9, atol=1e-12)
    assert got.lowest[0].mean_delta < got.highest[0].mean_delta
    assert "most extreme mean Δ" in res.to_markdown() and "first chunk" not in res.to_markdown()


def test_extremes_quote_the_first_chunk_when_a_texts_file_is_present(tmp_path):
    rng = np.random.default_rng(2)
    keys, per, d = list(range(20, 30)), 6, 8
    v = rng.normal(size=(len(keys) * per, d))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ids = np.repeat(np.asarray(keys, np.int64), per)
    chunk = np.tile(np.arange(per), len(keys))
    texts = [f"article {a} chunk {c}" for a, c in zip(ids, chunk)]
    write_store(tmp_path / "train.npz", v.astype(np.float32), ids, chunk, np.asarray(keys, np.int64),
                [f"t{k}" for k in keys], texts, {"t": 1})
    seq = load_sequences(tmp_path / "train.npz", split="train", k=2)
    res = analyze_bias(seq, n_resamples=20, rng=0)
    for e in res.per_article_delta.lowest + res.per_article_delta.highest:
        assert e.text is not None and e.text.endswith("chunk 0")  # the article's first chunk
    assert "| first chunk |" in res.to_markdown()
    assert res.to_dict()["per_article_delta"]["lowest"][0]["text"].startswith("article ")


def test_the_engine_names_the_same_extremes_as_the_one_shot_comparison():
    from lvmdiag.analyzers.data_report import analyze_data

    store = make_store(n_articles=30, d=8, rho=0.8, article_rho_sd=0.2, rng=3)
    splits = make_splits(store, k=3, rng=4)
    one = compare_bias(splits, n_resamples=20, rng=0)
    rep = analyze_data(splits, sections=("bias",), n_permutations=20, n_bootstrap=20)
    for name in splits:
        a, b = one.results[name].per_article_delta, rep.bias.results[name].per_article_delta
        assert [(e.row, e.article, e.windows) for e in a.lowest + a.highest] == \
               [(e.row, e.article, e.windows) for e in b.lowest + b.highest]
