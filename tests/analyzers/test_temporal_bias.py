"""Temporal-bias analyzer: slow reference loop, shard merging, calibration over seeds, planted effects."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from lvmdiag.analyzers.temporal_bias import (
    DELTA_BIN_WIDTH,
    DIRECTION_CAVEAT,
    BiasComparison,
    BiasResult,
    analyze_bias,
    compare_bias,
)
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError
from lvmdiag.synthetic import make_splits, make_store, reverse_articles, store_windows

K = 5


def binomial_band(p: float, n: int, level: float = 0.99) -> tuple[float, float]:
    """Share of successes a procedure with true rate p stays within with probability >= level."""
    lo, hi = stats.binom.interval(level, n, p)
    return lo / n, hi / n


# ---------------------------------------------------------------------------------------------
# A slow, obvious reference: one window at a time, float64, plain loops
# ---------------------------------------------------------------------------------------------
def reference_statistics(contexts, targets, groups, valid=None):
    n, k, _ = contexts.shape
    rows, excluded = [], 0
    for w in range(n):
        vecs = [contexts[w, i].astype(np.float64) for i in range(k)] + [targets[w].astype(np.float64)]
        bad = any(not np.all(np.isfinite(v)) for v in vecs) or any(np.linalg.norm(v) == 0 for v in vecs)
        if bad or (valid is not None and not valid[w]):
            excluded += 1
            continue
        u = [v / np.linalg.norm(v) for v in vecs]
        t = u[k]
        pos = [float(u[i] @ t) for i in range(k)]
        lag = [float(np.mean([u[j] @ u[j + L] for j in range(k + 1 - L)])) for L in range(1, k + 1)]
        m = np.mean(u[:k], axis=0)
        q = m / np.linalg.norm(m)
        rows.append(
            dict(
                g=groups[w], pos=pos, lag=lag, delta=pos[-1] - pos[0],
                cl=(float(u[k - 1] @ t), float(u[k - 1] @ u[k - 1])),
                mc=(float(q @ t), float(q @ u[k - 1])),
            )
        )
    deltas = np.array([r["delta"] for r in rows])
    per_group = {}
    for r in rows:
        per_group.setdefault(r["g"], []).append(r["delta"])
    art = np.array([np.mean(v) for v in per_group.values()])
    return dict(
        n=len(rows), excluded=excluded,
        pos=np.mean([r["pos"] for r in rows], axis=0),
        lag=np.mean([r["lag"] for r in rows], axis=0),
        delta=deltas.mean(), sd=deltas.std(ddof=1), share=np.mean(deltas > 0), deltas=deltas,
        copy_last=np.mean([r["cl"] for r in rows], axis=0),
        mean_context=np.mean([r["mc"] for r in rows], axis=0),
        art_mean=art.mean(), art_sd=art.std(ddof=1), art_share=np.mean(art > 0), n_art=art.size,
    )


def messy_data(seed=0, n=150, k=4, d=12):
    """Non-unit vectors, zero rows, a NaN row, an invalid mask and sparse, unordered group labels."""
    rng = np.random.default_rng(seed)
    ctx = (rng.standard_normal((n, k, d)) * rng.uniform(0.5, 3.0, (n, k, 1))).astype(np.float32)
    tgt = (rng.standard_normal((n, d)) + 0.8 * ctx[:, -1]).astype(np.float32)
    ctx[5, 2] = 0.0
    tgt[17] = 0.0
    ctx[40, 0, 3] = np.nan
    valid = np.ones(n, bool)
    valid[[60, 61]] = False
    groups = rng.choice([3, 10, 99, 7, 1000, 42, 5, 8], size=n)
    return ctx, tgt, groups, valid


def test_every_statistic_matches_the_reference_loop():
    ctx, tgt, groups, valid = messy_data()
    seqs = SequenceSet(ctx, tgt, valid=valid, source="<test>", split="train")
    res = analyze_bias(seqs, groups=groups, block_rows=7, n_resamples=200, rng=1)
    ref = reference_statistics(ctx, tgt, groups, valid)
    tol = 1e-5  # float32 dot products
    assert res.n_windows == ref["n"] and res.n_excluded == ref["excluded"] == 5
    np.testing.assert_allclose([e.value for e in res.position_profile], ref["pos"], atol=tol)
    np.testing.assert_allclose([e.value for e in res.lag_profile], ref["lag"], atol=tol)
    assert res.delta.value == pytest.approx(ref["delta"], abs=tol)
    assert res.share_positive.value == pytest.approx(ref["share"], abs=1e-12)
    for name in ("copy_last", "mean_context"):
        b = res.baselines[name]
        assert b.cos_next.value == pytest.approx(ref[name][0], abs=tol)
        assert b.cos_prev.value == pytest.approx(ref[name][1], abs=tol)
        assert b.margin.value == pytest.approx(ref[name][0] - ref[name][1], abs=tol)
    psd = res.per_sequence_delta
    assert psd.mean == pytest.approx(ref["delta"], abs=tol) and psd.sd == pytest.approx(ref["sd"], abs=tol)
    assert psd.share_positive == pytest.approx(ref["share"]) and psd.n == ref["n"]
    for key, q in (("q05", 0.05), ("q25", 0.25), ("q50", 0.5), ("q75", 0.75), ("q95", 0.95)):
        exact = np.quantile(ref["deltas"], q, method="inverted_cdf")
        assert abs(psd.quantiles[key] - exact) <= DELTA_BIN_WIDTH + 1e-9, key
    pad = res.per_article_delta
    assert pad.n == ref["n_art"] == res.n_groups
    assert pad.mean == pytest.approx(ref["art_mean"], abs=tol) and pad.sd == pytest.approx(ref["art_sd"], abs=tol)
    assert pad.share_positive == pytest.approx(ref["art_share"])
    # every interval brackets its estimate
    for e in (*res.position_profile, res.delta, *res.lag_profile):
        assert e.ci.low - 1e-12 <= e.value <= e.ci.high + 1e-12


def test_block_size_does_not_change_the_result():
    ctx, tgt, groups, valid = messy_data(seed=3)
    seqs = SequenceSet(ctx, tgt, valid=valid)
    a = analyze_bias(seqs, groups=groups, block_rows=1, n_resamples=100, rng=5)
    b = analyze_bias(seqs, groups=groups, block_rows=10_000, n_resamples=100, rng=5)
    np.testing.assert_allclose(
        [e.value for e in a.position_profile + a.lag_profile], [e.value for e in b.position_profile + b.lag_profile],
        rtol=1e-12,
    )
    assert a.delta.ci.low == pytest.approx(b.delta.ci.low, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Calibration: article-clustered data with a known population value
# ---------------------------------------------------------------------------------------------
RHO, RHO_SD = 0.7, 0.15


def population_values(n_draws=2_000_000):
    """E over articles of rho_a^L: the walk has E[cos(x_t, x_(t+L)) | rho_a] = rho_a^L exactly (synthetic.py).

    Window counts per article are independent of rho_a, so the ratio-of-sums target is the plain
    expectation over the per-article rho distribution (the same clipped normal make_store draws).
    """
    rho = np.clip(RHO + RHO_SD * np.random.default_rng(123).standard_normal(n_draws), 0.0, 0.99)
    return {"last": rho.mean(), "first": (rho**K).mean(), "delta": (rho - rho**K).mean()}


@pytest.mark.slow
def test_article_bootstrap_covers_the_planted_value_at_its_nominal_rate_and_row_bootstrap_does_not():
    truth = population_values()
    n_seeds, n_row_seeds = 200, 40
    hits = {"last": 0, "first": 0, "delta": 0}
    row_hits_last = 0
    for seed in range(n_seeds):
        # 120 articles: with a few dozen the percentile bootstrap itself under-covers (~0.92, a
        # known small-sample property), which would blur what this test is about
        store = make_store(n_articles=120, d=16, rho=RHO, article_rho_sd=RHO_SD, length=(8, 20), rng=seed)
        seqs = store_windows(store, K)
        res = analyze_bias(seqs, groups=seqs.article_ids, n_resamples=400, rng=seed)
        hits["last"] += res.position_profile[-1].ci.contains(truth["last"])
        hits["first"] += res.position_profile[0].ci.contains(truth["first"])
        hits["delta"] += res.delta.ci.contains(truth["delta"])
        if seed < n_row_seeds:  # the same data with every window its own unit: the iid-row bootstrap
            rows = analyze_bias(seqs, groups=np.arange(seqs.n), n_resamples=200, rng=seed)
            row_hits_last += rows.position_profile[-1].ci.contains(truth["last"])
    lo, hi = binomial_band(0.95, n_seeds)
    for name, h in hits.items():
        assert lo <= h / n_seeds <= hi, (name, h / n_seeds, (lo, hi))
    print(f"coverage over {n_seeds} seeds: {hits}, row bootstrap (last position): {row_hits_last}")
    # windows of one article share rho_a: treating them as independent gives far too narrow intervals
    assert row_hits_last / n_row_seeds < binomial_band(0.95, n_row_seeds)[0]


# ---------------------------------------------------------------------------------------------
# Planted effects
# ---------------------------------------------------------------------------------------------
def _half_width_se(e) -> float:
    return (e.ci.high - e.ci.low) / (2 * 1.96)


@pytest.mark.parametrize("rho", [0.5, 0.8, 0.9])
def test_planted_lag_decay_gives_delta_rho_minus_rho_to_the_k(rho):
    store = make_store(n_articles=80, d=64, rho=rho, article_rho_sd=0.0, rng=11)
    res = analyze_bias(store_windows(store, K), n_resamples=300, rng=0, groups=store_windows(store, K).article_ids)
    expected = rho - rho**K
    assert abs(res.delta.value - expected) < 4 * _half_width_se(res.delta) + 1e-6
    # the lag profile follows rho^L (adjacent coherence is rho exactly by construction)
    assert res.lag_profile[0].value == pytest.approx(rho, abs=1e-5)
    for lag, e in enumerate(res.lag_profile, start=1):
        assert abs(e.value - rho**lag) < 4 * max(_half_width_se(e), 1e-4)


def test_reversing_every_article_leaves_delta_unchanged_within_its_ci():
    # drift is a time-directed effect (chunks move along v as t grows); Δ still does not see the direction.
    # (A drift so strong that adjacent coherence changes along the article would move Δ slightly,
    # because reversal swaps which adjacent pairs sit at the end of the windows, not their lag.)
    store = make_store(n_articles=60, d=64, rho=0.75, drift=0.01, article_rho_sd=0.1, rng=4)
    fwd_seqs = store_windows(store, K)
    rev_seqs = store_windows(reverse_articles(store), K)
    fwd = analyze_bias(fwd_seqs, groups=fwd_seqs.article_ids, n_resamples=500, rng=0)
    rev = analyze_bias(rev_seqs, groups=rev_seqs.article_ids, n_resamples=500, rng=0)
    assert fwd.delta.ci.contains(rev.delta.value)
    assert rev.delta.ci.contains(fwd.delta.value)
    assert fwd.delta.value > 0.1  # a strong gradient in both directions
    # the farthest pair (c_0, t) of a window is the same pair reversed: its mean is identical
    assert rev.position_profile[0].value == pytest.approx(fwd.position_profile[0].value, abs=1e-6)


def test_a_difference_in_rho_between_splits_is_detected():
    train = store_windows(make_store(n_articles=60, d=64, rho=0.8, article_rho_sd=0.05, rng=1), K, split="train")
    val = store_windows(
        make_store(n_articles=40, d=64, rho=0.6, article_rho_sd=0.05, first_article_id=1000, rng=2), K, split="val"
    )
    comp = compare_bias({"train": train, "val": val}, groups={"train": train.article_ids, "val": val.article_ids},
                        n_resamples=500, rng=0)
    tests = {t.name: t for t in comp.differences["val"]}
    delta = tests["Δ = cos(c_last,t) − cos(c_0,t)"]
    expected = (0.6 - 0.6**K) - (0.8 - 0.8**K)  # +0.050
    assert delta.pvalue < 0.01 and delta.effect.ci.low > 0
    assert abs(delta.statistic - expected) < 4 * _half_width_se(delta.effect)
    coh = tests["adjacent coherence (lag 1)"]
    assert coh.pvalue < 0.01 and coh.effect.ci.high < 0
    assert abs(coh.statistic - (0.6 - 0.8)) < 4 * _half_width_se(coh.effect)
    assert comp.shared_groups == {"val": 0} and comp.notes == ()


@pytest.mark.slow
@pytest.mark.slow
def test_split_differences_are_calibrated_only_when_articles_are_permuted():
    """Random article splits of one store (articles differ: per-article rho): over 200 seeds every
    difference test rejects at about its nominal rate; permuting windows instead inflates the rate."""
    n_seeds, alpha, b = 200, 0.05, 200
    grouped, iid = [], []
    for seed in range(n_seeds):
        store = make_store(n_articles=40, d=32, rho=0.75, article_rho_sd=0.1, length=(8, 25), rng=1000 + seed)
        splits = make_splits(store, K, ratios=(0.6, 0.4), rng=seed)
        comp = compare_bias(splits, groups={k: v.article_ids for k, v in splits.items()}, n_resamples=b, rng=seed)
        grouped.append([t.pvalue for t in comp.differences["val"]])
        n_train = splits["train"].n
        rows = {"train": np.arange(n_train), "val": n_train + np.arange(splits["val"].n)}  # one "article" per window
        comp_iid = compare_bias(splits, groups=rows, n_resamples=b, rng=seed)
        iid.append([t.pvalue for t in comp_iid.differences["val"]])
    names = [t.name for t in comp.differences["val"]]
    # P(p <= alpha) for p = (b+1)/(B+1) is floor(alpha (B+1))/(B+1); each of the m counts is checked at
    # once, so each gets the binomial band of level 1 - 0.01/m (all pass with probability >= 99%)
    level, m = np.floor(alpha * (b + 1)) / (b + 1), len(names)
    lo, hi = stats.binom.ppf(0.005 / m, n_seeds, level), stats.binom.ppf(1 - 0.005 / m, n_seeds, level)
    count_grouped = (np.array(grouped) <= alpha).sum(0)
    count_iid = (np.array(iid) <= alpha).sum(0)
    for name, cg in zip(names, count_grouped):
        assert lo <= cg <= hi, f"{name}: {cg}/{n_seeds} false alarms with article permutation, band [{lo}, {hi}]"
    for name in ("Δ = cos(c_last,t) − cos(c_0,t)", "adjacent coherence (lag 1)"):
        ci = count_iid[names.index(name)]
        assert ci > hi, f"{name}: window permutation should be anti-conservative here; got {ci}/{n_seeds}"


def test_articles_in_both_splits_are_reported_as_leakage():
    store = make_store(n_articles=50, d=32, rho=0.8, rng=3)
    splits = make_splits(store, K, n_duplicated=5, rng=0)
    comp = compare_bias(splits, groups={k: v.article_ids for k, v in splits.items()}, n_resamples=100, rng=0)
    assert comp.shared_groups["val"] == 5
    assert any("leakage" in n for n in comp.notes)
    assert "leakage" in comp.to_markdown()


# ---------------------------------------------------------------------------------------------
# Reports, validation, degenerate input
# ---------------------------------------------------------------------------------------------
def test_reports_state_the_direction_caveat_and_the_trivial_margin():
    store = make_store(n_articles=20, d=16, rng=0)
    splits = make_splits(store, K, rng=0)
    comp = compare_bias(splits, groups={k: v.article_ids for k, v in splits.items()}, n_resamples=50)
    res = comp.results["train"]
    assert isinstance(comp, BiasComparison) and isinstance(res, BiasResult)
    for md in (res.to_markdown(), comp.to_markdown()):
        assert "does not change when every article is reversed" in md
        assert "cannot show forward vs backward direction" in md
        assert "a negative margin is what a trivial predictor gets" in md
    assert DIRECTION_CAVEAT in res.to_markdown()
    assert res.baselines["copy_last"].cos_prev.value == pytest.approx(1.0)
    assert res.baselines["copy_last"].margin.value < -0.1
    json.dumps(comp.to_dict(), allow_nan=False)  # JSON-safe twin


def test_contiguous_blocks_are_named_in_the_report():
    store = make_store(n_articles=20, d=16, rng=0)
    seqs = store_windows(store, K, keep_ids=False)
    blocks = np.arange(seqs.n) // 25
    res = analyze_bias(seqs, groups=blocks, group_method="contiguous-blocks", n_resamples=50)
    md = res.to_markdown()
    assert "contiguous-block bootstrap" in md and res.per_article_delta.unit == "block"
    assert res.delta.method == "contiguous-block bootstrap"


def test_bad_arguments_raise_input_errors():
    store = make_store(n_articles=5, d=8, rng=0)
    seqs = store_windows(store, K)
    with pytest.raises(InputError, match="one label per window"):
        analyze_bias(seqs, groups=np.zeros(3, int))
    with pytest.raises(InputError, match="level"):
        analyze_bias(seqs, groups=seqs.article_ids, level=1.5)
    zero = SequenceSet(np.zeros((4, 3, 8), np.float32), np.zeros((4, 8), np.float32), source="z.npz")
    with pytest.raises(InputError, match="no valid windows in z.npz"):
        analyze_bias(zero, groups=np.arange(4))
    short = SequenceSet(np.ones((4, 1, 8), np.float32), np.ones((4, 8), np.float32))
    with pytest.raises(InputError, match="K >= 2"):
        analyze_bias(short, groups=np.arange(4))
    with pytest.raises(InputError, match="at least 2 splits"):
        compare_bias({"train": seqs})


# ---------------------------------------------------------------------------------------------
# Integration: memory maps, resolved groups, progress
# ---------------------------------------------------------------------------------------------
def _numbers(obj):
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _numbers(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in _numbers(v)]
    return [float(obj)] if isinstance(obj, (int, float)) else []


def test_memory_mapped_input_gives_the_same_result_and_reports_progress(tmp_path):
    store = make_store(n_articles=30, d=16, rho=0.7, article_rho_sd=0.1, rng=8)
    seqs = store_windows(store, K)
    np.save(tmp_path / "contexts.npy", seqs.contexts)
    np.save(tmp_path / "targets.npy", seqs.targets)
    mapped = SequenceSet(np.load(tmp_path / "contexts.npy", mmap_mode="r"),
                         np.load(tmp_path / "targets.npy", mmap_mode="r"), article_ids=seqs.article_ids,
                         id_source="given")
    calls = []
    a = analyze_bias(mapped, groups=seqs.article_ids, block_rows=64, n_resamples=100, rng=2,
                     progress=lambda done, total: calls.append((done, total)))
    b = analyze_bias(seqs, groups=seqs.article_ids, block_rows=10_000, n_resamples=100, rng=2)
    da, db = a.to_dict(), b.to_dict()
    for key in ("position_profile", "lag_profile", "delta", "baselines", "per_sequence_delta", "per_article_delta"):
        np.testing.assert_allclose(_numbers(da[key]), _numbers(db[key]), rtol=1e-10, err_msg=key)
    assert calls[-1] == (seqs.n, seqs.n) and [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_without_ids_articles_are_recovered_and_a_window_level_split_shows_leakage():
    store = make_store(n_articles=40, d=32, rho=0.8, rng=6)
    clean = make_splits(store, K, by="article", keep_ids=False, rng=0)
    comp = compare_bias(clean, n_resamples=100, rng=0)
    assert comp.group_method == "recovered" and comp.shared_groups["val"] == 0
    leaky = make_splits(store, K, by="window", keep_ids=False, rng=0)  # the upstream mistake
    comp = compare_bias(leaky, n_resamples=100, rng=0)
    assert comp.group_method == "recovered"
    assert comp.shared_groups["val"] > 0.5 * comp.results["val"].n_groups
    assert any("leakage" in n for n in comp.notes)


def test_files_without_ids_or_shared_chunks_fall_back_to_contiguous_blocks_and_say_so():
    rng = np.random.default_rng(0)

    def independent_windows(n, name):  # no chunk is shared between windows: nothing to recover
        ctx = rng.standard_normal((n, K, 16)).astype(np.float32)
        tgt = (ctx[:, -1] + rng.standard_normal((n, 16))).astype(np.float32)
        return SequenceSet(ctx, tgt, source=f"{name}.npz", split=name)

    splits = {"train": independent_windows(400, "train"), "val": independent_windows(200, "val")}
    comp = compare_bias(splits, n_resamples=100, rng=0)
    assert comp.group_method == "contiguous-blocks"
    assert comp.shared_groups == {}  # block codes say nothing about articles: no leakage claim
    md = comp.to_markdown()
    assert "No article ids were given or recovered" in md and "contiguous-block bootstrap" in md
    assert all(r.delta.method == "contiguous-block bootstrap" for r in comp.results.values())


def test_few_articles_get_a_warning_that_the_intervals_are_approximate():
    few = store_windows(make_store(n_articles=12, d=16, rng=0), K)
    many = store_windows(make_store(n_articles=40, d=16, rng=0), K)
    md_few = analyze_bias(few, groups=few.article_ids, n_resamples=50).to_markdown()
    md_many = analyze_bias(many, groups=many.article_ids, n_resamples=50).to_markdown()
    assert "With fewer than 30 articles (" in md_few and ": 12)" in md_few
    assert "somewhat too narrow" in md_few and "somewhat too narrow" not in md_many
