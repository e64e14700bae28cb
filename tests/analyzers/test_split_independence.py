"""Adding a split never changes what is reported about the others (README: "adding an ood file never changes a
verdict about train or val"). Folds, the MMD kernel and every resampling stream of a comparison depend on its two
splits (and, for folds, on articles it shares with a split listed before it); an ood file used to change val's
folds, kernel bandwidth, random features and permutations."""

import numpy as np
import pytest

import lvmdiag
from lvmdiag.data.sequences import SequenceSet


def _articles(n, seed, shift=0.0, d=16, k=3):
    """AR(1) articles of 10-30 chunks (unit norm), cut into windows of K context chunks and a target."""
    rng = np.random.default_rng(seed)
    ctx, tgt, ids = [], [], []
    for a in range(n):
        x, chunks = rng.standard_normal(d), []
        for _ in range(rng.integers(10, 30)):
            x = 0.8 * x + 0.6 * rng.standard_normal(d)
            chunks.append((x + shift) / np.linalg.norm(x + shift))
        chunks = np.array(chunks, np.float32)
        for i in range(k, len(chunks)):
            ctx.append(chunks[i - k : i]), tgt.append(chunks[i]), ids.append(a + 1000 * seed)
    return np.array(ctx), np.array(tgt), np.array(ids)


def _split(n, seed, name, shift=0.0):
    c, t, i = _articles(n, seed, shift)
    return SequenceSet(c, t, article_ids=i, id_source="given", split=name)


@pytest.fixture(scope="module")
def runs():
    train, val = _split(60, 1, "train"), _split(24, 2, "val", shift=0.03)
    ood = _split(20, 0, "ood", shift=-0.05)  # ids 0..19 come before train's: every article code moves
    kw = dict(n_permutations=99, n_bootstrap=50, seed=4)
    return lvmdiag.data(train, val, **kw), lvmdiag.data(train, val, ood, **kw)


def test_val_divergence_is_the_same_with_or_without_an_ood_split(runs):
    two, three = runs
    assert [c.other for c in three.divergence.comparisons] == ["val", "ood"]
    assert three.divergence.comparisons[0].to_dict() == two.divergence.comparisons[0].to_dict()
    assert three.divergence.bandwidths == two.divergence.bandwidths


def test_bias_of_train_and_val_is_the_same_with_or_without_an_ood_split(runs):
    two, three = runs
    run_wide = {"group_note"}  # describes the whole run's grouping ("104 articles"), not the split
    for split in ("train", "val"):
        a, b = three.bias.results[split].to_dict(), two.bias.results[split].to_dict()
        assert {k: v for k, v in a.items() if k not in run_wide} == {k: v for k, v in b.items() if k not in run_wide}
    assert [t.to_dict() for t in three.bias.differences["val"]] == [t.to_dict() for t in two.bias.differences["val"]]


def test_val_findings_are_the_same_with_or_without_an_ood_split(runs):
    two, three = runs
    val_findings = lambda r: [f.to_dict() for f in r.findings if "ood" not in str(f.to_dict())]  # noqa: E731
    assert val_findings(three) == val_findings(two)


def test_a_single_split_bias_equals_the_reference_side_of_a_comparison():
    train, val = _split(30, 5, "train"), _split(12, 6, "val")
    alone = lvmdiag.bias(train, n_resamples=200, seed=3, direction=False)
    both = lvmdiag.bias(train, val, n_resamples=200, seed=3, direction=False)
    a, b = alone.bias.to_dict(), both.bias.results["train"].to_dict()
    assert a.pop("group_note") != b.pop("group_note")  # "30 articles" vs "42 articles": the run, not the split
    assert a == b


def test_above_the_caps_the_article_sample_does_not_depend_on_other_splits():
    """Above ARTICLE_CAP / WINDOW_CAP a split enters through a hash sample of its articles. The hash was of the
    run-wide article code, which an ood file renumbers; it is now of the article's rank within its split."""
    from lvmdiag.analyzers.divergence import analyze_divergence

    splits = {"train": _split(60, 1, "train"), "val": _split(24, 2, "val", shift=0.03)}
    caps = dict(article_cap=20, window_cap=150, n_permutations=99, n_bootstrap=30, rng=2)
    two = analyze_divergence(splits, **caps)
    three = analyze_divergence({**splits, "ood": _split(20, 0, "ood")}, **caps)  # ids 0..19: codes renumbered
    val_two, val_three = two.comparisons[0].to_dict(), three.comparisons[0].to_dict()
    assert val_two == val_three
    assert any("sample" in n for n in two.comparisons[0].notes)  # the caps were in force


def test_a_verdict_the_permutations_cannot_reach_says_undecided_not_no_difference():
    """With 5 permutations the smallest p is 1/6, above 0.05/m for every family: "no difference between splits"
    was printed for a large planted shift (21 of 21 significant with the default)."""
    train, val = _split(40, 1, "train"), _split(16, 2, "val", shift=0.3)
    few = lvmdiag.data(train, val, n_permutations=5, n_bootstrap=30, seed=1)
    lines = few.verdict()
    div = next(v for v in lines if v.startswith("Divergence:"))
    bias = next(v for v in lines if v.startswith("Temporal bias:"))
    assert "undecided at this resolution" in div and "smallest p-value is 0.17" in div and "no difference" not in div
    assert "undecided at this resolution" in bias
    assert "more permutations could make them significant" in div
    # contamination's p (2/6) is above its floor (1/6) and alpha: read as "no", not as blocked by the cap
    contamination = next(v for v in lines if v.startswith("Contamination:"))
    assert "undecided" not in contamination and "p 0.333" in contamination
    assert "undecided at this resolution" in few.divergence.to_markdown()
    enough = lvmdiag.data(train, val, n_bootstrap=30, seed=1)  # auto: sized for each family
    div = next(v for v in enough.verdict() if v.startswith("Divergence:"))
    assert "significant after correction" in div and "undecided" not in " ".join(enough.verdict())


def test_direction_draws_belong_to_each_split_not_to_its_position():
    """Direction seeded split i by position: ood's numbers changed with whether a val split came before it."""
    train, val, ood = _split(30, 1, "train"), _split(12, 2, "val"), _split(12, 0, "ood", shift=-0.05)
    kw = dict(n_permutations=99, seed=5)
    with_val = lvmdiag.direction(train, val, ood, **kw)
    without = lvmdiag.direction(train, ood=ood, **kw)
    assert with_val.split("ood").to_dict() == without.split("ood").to_dict()
    assert with_val.split("train").to_dict() == without.split("train").to_dict()


def test_a_comparison_left_with_an_empty_fold_is_a_clear_error():
    """Reference with 2 articles, val with 5, ood sharing 2 of val's ids plus one new: ood's comparison holds 5
    articles but, as shared ids keep val's folds, only 4 folds (review). One line, not a CV with an empty fold."""
    from lvmdiag.analyzers.divergence import analyze_divergence
    from lvmdiag.errors import InputError

    rng = np.random.default_rng(0)

    def arts(sizes, name):  # {article id: windows}
        ids = np.repeat(list(sizes), list(sizes.values()))
        return SequenceSet(rng.standard_normal((ids.size, 3, 8)).astype(np.float32),
                           rng.standard_normal((ids.size, 8)).astype(np.float32), article_ids=ids,
                           id_source="given", split=name)

    splits = {"train": arts({0: 30, 1: 30}, "train"), "val": arts({2: 40, 3: 10, 4: 10, 5: 10, 6: 10}, "val"),
              "ood": arts({3: 10, 6: 10, 8: 10}, "ood")}
    with pytest.raises(InputError, match=r"cross-validation by article of (val|ood) against train finds articles in only"):
        for seed in range(20):  # the greedy placement depends on the seed; some seed leaves a fold empty
            analyze_divergence(splits, rng=seed, n_permutations=19, n_bootstrap=10)
