"""Article-level contamination: exact helpers, power on a planted 5% of foreign windows, calibration on real data."""

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from lvmdiag.analyzers.contamination import (
    _tail_share,
    analyze_contamination,
    centroid_scores,
    conformal_pvalues,
)
from lvmdiag.errors import InputError
from lvmdiag.synthetic import make_store

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "python_docs"


def test_helpers_equal_slow_loops():
    rng = np.random.default_rng(0)
    ref, oth = rng.standard_normal((30, 6)), rng.standard_normal((9, 6))
    ref_scores, scores = centroid_scores(ref, oth)
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
    for i in range(30):
        loo = np.mean([unit(ref[j]) for j in range(30) if j != i], axis=0)
        assert ref_scores[i] == pytest.approx(1 - unit(ref[i]) @ unit(loo), abs=1e-12)
    centre = unit(np.mean([unit(r) for r in ref], axis=0))
    np.testing.assert_allclose(scores, [1 - unit(o) @ centre for o in oth], atol=1e-12)
    p = conformal_pvalues(ref_scores, scores)
    np.testing.assert_allclose(p, [(1 + np.sum(ref_scores >= s)) / 31 for s in scores])
    pool = rng.standard_normal(57)
    labels = np.zeros((40, 57), bool)
    for row in labels:
        row[rng.choice(57, 14, replace=False)] = True
    slow = [np.mean(pool[row] > np.quantile(pool[~row], 0.99)) for row in labels]
    np.testing.assert_allclose(_tail_share(pool, labels, 0.01), slow)


def _sums(store):
    """Per-article sums and counts of the chunk vectors of a synthetic store."""
    ids = np.unique(store.article_ids, return_inverse=True)[1]
    sums = np.zeros((ids.max() + 1, store.vectors.shape[1]))
    np.add.at(sums, ids, store.vectors)
    return sums, np.bincount(ids).astype(float)


def _corpus(n, direction, seed, length=(30, 60), first=0):
    """Articles of one corpus: random walks around a shared corpus direction (like topical embeddings)."""
    return make_store(n_articles=n, d=32, rho=0.8, length=length, shift=1.2, shift_direction=direction,
                      first_article_id=first, rng=seed)


def test_five_percent_foreign_windows_are_found_and_named():
    d = 32
    u0, u1 = np.eye(d)[0], np.eye(d)[1]
    found, named_right, fdp = 0, [], []
    for seed in range(20):
        train = _corpus(200, u0, seed)
        native = _corpus(50, u0, 1000 + seed, first=10_000)
        foreign = _corpus(8, u1, 2000 + seed, length=(8, 14), first=20_000)  # ~5% of val's windows
        (rs, rc), (ns, nc), (fs, fc) = _sums(train), _sums(native), _sums(foreign)
        share = fc.sum() / (fc.sum() + nc.sum())
        assert 0.03 < share < 0.07
        names = [f"n{i}" for i in range(len(nc))] + [f"f{i}" for i in range(len(fc))]
        res = analyze_contamination(rs, rc, np.vstack([ns, fs]), np.r_[nc, fc], names, split="val", rng=seed)
        found += res.global_test.status(0.05) == "significant"
        flagged = {a.article for a in res.flagged}
        named_right.append(len({n for n in flagged if n.startswith("f")}) / len(fc))
        fdp.append(len({n for n in flagged if n.startswith("n")}) / max(len(flagged), 1))
    assert found >= 18  # >= 90% of 20 seeds
    assert np.mean(named_right) >= 0.9
    # BH controls FDR = E[FDP] <= 0.05; FDP per seed lies in [0, 1] with sd <= ~0.1 when ~8 are named,
    # so the mean of 20 stays below 0.05 + 2.3 * 0.1 / sqrt(20) ~ 0.10 with probability ~99%
    assert np.mean(fdp) <= 0.10


def test_no_false_alarms_on_random_article_resplits_of_the_real_data():
    """Null: train and val are random by-article splits of the bundled real embeddings (python docs)."""
    vec, ids = [], []
    for name in ("train_store.npz", "val_store.npz"):
        z = np.load(FIXTURES / name)
        vec.append(z["vectors"].astype(np.float64))
        ids.append(z["article_ids"])
    vec, ids = np.vstack(vec), np.concatenate(ids)
    arts, inv = np.unique(ids, return_inverse=True)
    sums = np.zeros((arts.size, vec.shape[1]))
    np.add.at(sums, inv, vec)
    counts = np.bincount(inv).astype(float)
    n_seeds, alarms, named = 60, 0, 0
    for seed in range(n_seeds):
        rng = np.random.default_rng(seed)
        is_val = np.zeros(arts.size, bool)
        is_val[rng.choice(arts.size, 14, replace=False)] = True
        res = analyze_contamination(sums[~is_val], counts[~is_val], sums[is_val], counts[is_val],
                                    [str(a) for a in arts[is_val]], split="val", rng=seed)
        alarms += res.global_test.status(0.05) == "significant"
        named += bool(res.flagged)
        g = res.global_test  # one-sided bound and one-sided p agree, whichever side the share falls
        assert g.interval_excludes_null() == (g.pvalue <= 0.05) and g.effect.ci.high == 1.0
    hi = binom.ppf(0.995, n_seeds, 0.05)
    assert alarms <= hi and named <= hi


def test_too_few_reference_articles_is_a_clear_error():
    with pytest.raises(InputError, match="needs >= 10 train articles"):
        analyze_contamination(np.ones((3, 4)), np.ones(3), np.ones((2, 4)), np.ones(2), ["a", "b"], split="val")


def test_named_articles_carry_their_first_chunk_text_when_known():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((300, 8)) + 5 * np.eye(8)[0]
    far = rng.standard_normal((3, 8)) + 9 * np.eye(8)[1]
    near = rng.standard_normal((12, 8)) + 5 * np.eye(8)[0]
    names = [f"a{i}" for i in range(15)]
    texts = [f"text of a{i}" for i in range(15)]
    res = analyze_contamination(ref, np.ones(300), np.vstack([near, far]), np.ones(15), names, split="val",
                                other_texts=texts, rng=0)
    named = {a.article: a.text for a in res.flagged}
    assert {"a12", "a13", "a14"} <= set(named) and named["a12"] == "text of a12"
    assert "first chunk" in res.to_markdown() and "text of a13" in res.to_markdown()
