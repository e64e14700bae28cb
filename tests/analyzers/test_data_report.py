"""The composed data report: BH families per question and split, findings by kind, verdict first, clean seams."""

import numpy as np
import pytest

from lvmdiag.analyzers import data_report
from lvmdiag.analyzers.data_report import analyze_data, parse_fail_on
from lvmdiag.errors import InputError, LvmdiagWarning
from lvmdiag.stats.multiple_testing import iter_tests
from lvmdiag.stats.resampling import benjamini_hochberg
from lvmdiag.synthetic import make_splits, make_store, store_windows

FAST = dict(n_permutations=60, n_bootstrap=60)


@pytest.fixture(scope="module")
def store():
    return make_store(n_articles=50, d=12, rho=0.8, article_rho_sd=0.05, rng=11)


def test_window_split_is_flagged_as_leakage_and_article_split_is_not(store):
    leaky = analyze_data(make_splits(store, k=4, by="window", rng=1), **FAST)
    clean = analyze_data(make_splits(store, k=4, by="article", rng=1), **FAST)
    assert "leakage" in leaky.finding_kinds()
    assert "leakage" not in clean.finding_kinds()
    assert clean.skipped == {}


def test_bh_families_are_one_per_question_and_split(store):
    splits = make_splits(store, k=4, rng=2)
    splits["ood"] = splits.pop("val")  # a third split: reuse val's windows under another name
    splits["val"] = make_splits(store, k=4, rng=7)["val"]
    rep = analyze_data(splits, **FAST)
    tests = iter_tests((rep.bias, rep.direction, rep.divergence, rep.leakage))
    families = {}
    for t in tests:
        families.setdefault(t.family, []).append(t)
    for name in ("direction: train", "direction: val", "direction: ood", "divergence: val vs train",
                 "divergence: ood vs train", "bias: val − train", "bias: ood − train"):
        assert name in families, name
    for name, fam in families.items():  # BH within each family, computed independently here
        raw = np.array([t.pvalue for t in fam])
        np.testing.assert_allclose([t.pvalue_adjusted for t in fam], benjamini_hochberg(raw), err_msg=name)
        assert all(t.family_size == len(fam) for t in fam)
    assert rep.n_tests == len(tests) > len(rep.divergence.tests())  # other sections contribute tests
    assert set(families) == set(rep.families) and "" not in families
    md = rep.to_markdown()
    assert md.startswith("# Data report")
    assert md.index("## Verdict") < md.index("### Split divergence") < md.index("### Direction")
    assert "within one family per question and split" in md and "direction: val (2)" in md


def test_planted_shift_is_a_divergence_finding():
    train = make_store(n_articles=40, d=12, rho=0.8, rng=0)
    val = make_store(n_articles=15, d=12, rho=0.8, shift=0.6, first_article_id=10_000, rng=1)
    splits = {"train": store_windows(train, 4, "train"), "val": store_windows(val, 4, "val")}
    rep = analyze_data(splits, sections=("divergence", "leakage"), **FAST)
    assert "divergence" in rep.finding_kinds() and "leakage" not in rep.finding_kinds()
    assert rep.skipped == {"bias": "not requested", "direction": "not requested"}
    assert rep.bias is None and "Sections not included" in rep.to_markdown()


def test_a_missing_section_module_leaves_a_clean_seam(store, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "lvmdiag.engine.leakage", None)  # the section's engine module is missing
    rep = analyze_data(make_splits(store, k=4, rng=3), sections=("divergence", "leakage"), **FAST)
    assert rep.leakage is None and rep.skipped["leakage"].startswith("module unavailable")
    assert rep.divergence is not None


def test_reads_paths_and_rejects_bad_requests(store, tmp_path):
    splits = make_splits(store, k=4, rng=4)
    paths = {}
    for name, s in splits.items():
        d = tmp_path / name
        d.mkdir()
        np.save(d / "contexts.npy", s.contexts)
        np.save(d / "targets.npy", s.targets)
        np.save(d / "article_ids.npy", s.article_ids)
        paths[name] = d
    rep = analyze_data({**paths, "ood": None}, k=4, sections=("divergence",), **FAST)
    assert rep.splits == ("train", "val") and rep.n_windows["val"] == splits["val"].n
    with pytest.raises(InputError, match="'train'"):
        analyze_data({"val": paths["val"], "ood": paths["val"]}, **FAST)
    with pytest.raises(InputError, match="unknown report sections"):
        analyze_data(paths, sections=("divergense",), **FAST)


def test_parse_fail_on():
    assert parse_fail_on(None) == set()
    assert parse_fail_on("leakage, divergence") == {"leakage", "divergence"}
    assert parse_fail_on("any") == set(data_report.FINDING_KINDS)
    with pytest.raises(InputError, match="leakag"):
        parse_fail_on("leakag")


def test_a_split_too_small_to_compare_is_reported_as_not_tested(store):
    """One val article: no divergence, no bias differences, no val classifier; the verdict must not say "no difference"."""
    big = store_windows(store, 4, "train")
    small_store = make_store(n_articles=1, d=12, rho=0.8, first_article_id=10_000, rng=5)
    with pytest.warns(LvmdiagWarning, match="single article"):
        rep = analyze_data({"train": big, "val": store_windows(small_store, 4, "val")}, **FAST)
    assert "divergence" in rep.skipped and rep.bias is not None and "val" not in rep.bias.differences
    verdict = "\n".join(rep.verdict())
    assert "no statistic differs" not in verdict and "not computed" in verdict
    assert "at chance in every split" not in verdict and "classifier not run on val" in verdict
    no_dir = [f.message for f in rep.findings if f.kind == "no-direction"]
    assert rep.direction.detected() or (len(no_dir) == 1 and no_dir[0].startswith(
        "no arrow of time detected after correction in train"))


def test_progress_covers_the_article_recovery_of_id_less_inputs_then_the_pass(store):
    """Id-less inputs: the recovery's read ticks to the total first (it used to be silent), then the pass."""
    from dataclasses import replace

    splits = {n: replace(s, article_ids=None) for n, s in make_splits(store, k=5, by="window", rng=1).items()}
    calls = []
    rep = analyze_data(splits, sections=("bias",), n_permutations=20, n_bootstrap=20,
                       progress=lambda done, total: calls.append((done, total)))
    total = sum(s.n for s in splits.values())
    assert rep.grouping.startswith("recovered")
    ends = [i for i, c in enumerate(calls) if c == (total, total)]
    assert len(ends) >= 2 and ends[0] < ends[-1]  # the recovery reached the total, then the pass did
    assert calls[0][0] < total and all(t == total for _, t in calls)
