import numpy as np
import pytest

from lvmdiag.train.evaluate import evaluate


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _data(n=150, k=4, d=12, seed=0):
    rng = np.random.default_rng(seed)
    ctx = _unit(rng.standard_normal((n, k, d)))
    tgt = _unit(ctx[:, -1] + 0.8 * rng.standard_normal((n, d)) / np.sqrt(d))
    return ctx, tgt


def _noisy_predictor(seed):
    def predict(ctx):
        rng = np.random.default_rng(seed + ctx.shape[0])
        raw = _unit(ctx[:, -1] + rng.standard_normal(ctx[:, -1].shape))
        return _unit(0.7 * raw + 0.3 * _unit(ctx.mean(1))), raw
    return predict


def _slow(ctx, tgt, q, q_raw, pool):
    """Independent loops over rows following the documented definitions."""
    n = len(tgt)
    anchor = _unit(ctx.mean(1))
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    out = {"cos_next": np.mean([cos(q[i], tgt[i]) for i in range(n)]),
           "cos_prev": np.mean([cos(q[i], ctx[i, -1]) for i in range(n)]),
           "cos_anchor": np.mean([cos(q[i], anchor[i]) for i in range(n)]),
           "raw_cos_next": np.mean([cos(q_raw[i], tgt[i]) for i in range(n)]),
           "raw_cos_prev": np.mean([cos(q_raw[i], ctx[i, -1]) for i in range(n)])}
    out["margin"] = out["cos_next"] - out["cos_prev"]
    order = np.random.default_rng(0).permutation(n)
    s = min(pool, n)
    ranks = []
    for p in range(0, n, s):
        members = list(order[p:p + s])
        fillers = list(order[: s - len(members)])
        for i in members:
            cands = [tgt[j] for j in members + fillers if j != i] + [ctx[i, -1]]
            own = cos(q[i], tgt[i])
            ranks.append(1 + sum(cos(q[i], v) > own + 1e-6 for v in cands))
    out["rank_mean"] = np.mean(ranks)
    out["recall_at_1"] = np.mean(np.array(ranks) == 1)
    sv = np.linalg.svd(_unit(q).astype(np.float64), compute_uv=False)
    p_ = sv / sv.sum()
    out["effective_rank"] = float(np.exp(-(p_ * np.log(p_)).sum()))
    qs = _unit(q).astype(np.float64)
    g = qs @ qs.T
    out["mean_pairwise_cos"] = (g.sum() - np.trace(g)) / (n * (n - 1))
    return out


@pytest.mark.parametrize("n, pool, batch", [(150, 32, 64), (150, 32, 1000), (20, 32, 8), (97, 10, 25)])
def test_matches_slow_loops(n, pool, batch):
    ctx, tgt = _data(n=n)
    predict = _noisy_predictor(5)
    # the predictor is deterministic per row block size, so compute the slow reference block-free
    q_all, raw_all = [], []
    got = evaluate(lambda c: _record(c, predict, q_all, raw_all), ctx, tgt, pool_size=pool, batch_size=batch)
    order = np.random.default_rng(0).permutation(n)
    q = np.empty((n, ctx.shape[2]), np.float32)
    raw = np.empty_like(q)
    q[order] = np.concatenate(q_all)
    raw[order] = np.concatenate(raw_all)
    want = _slow(ctx, tgt, q, raw, pool)
    for key, value in want.items():
        assert getattr(got, key) == pytest.approx(value, abs=1e-5), key
    assert got.n == n
    assert got.n_candidates == min(pool, n) + 1
    assert got.rank_chance == (got.n_candidates + 1) / 2


def _record(ctx, predict, q_all, raw_all):
    q, raw = predict(ctx)
    q_all.append(q)
    raw_all.append(raw)
    return q, raw


def test_pools_do_not_depend_on_batch_size():
    ctx, tgt = _data(n=300)
    pred = lambda c: (_unit(c[:, -1] + 0.5 * c[:, 0]), c[:, -1])  # noqa: E731  row-wise, block-independent
    a = evaluate(pred, ctx, tgt, pool_size=16, batch_size=16)
    b = evaluate(pred, ctx, tgt, pool_size=16, batch_size=512)
    assert a.to_dict() == pytest.approx(b.to_dict(), abs=1e-6)


def test_uninformative_predictor_scores_chance():
    # A prediction independent of everything ranks the true target uniformly among 65 candidates.
    n, d = 6500, 32
    rng = np.random.default_rng(3)
    ctx, tgt = _unit(rng.standard_normal((n, 5, d))), _unit(rng.standard_normal((n, d)))
    noise = _unit(rng.standard_normal((n, d)))
    seen = iter(np.array_split(noise, np.arange(512, n, 512)))  # one slice per evaluator block of 512 rows
    got = evaluate(lambda c: (next(seen), c[:, 0]), ctx, tgt, pool_size=64, batch_size=512)
    assert got.n_candidates == 65
    # 4 standard errors of a uniform rank on 1..65 (var (65^2-1)/12) and of a Bernoulli(1/65) share
    assert abs(got.rank_mean - got.rank_chance) < 4 * np.sqrt((65**2 - 1) / 12 / n)
    assert abs(got.recall_at_1 - 1 / 65) < 4 * np.sqrt((1 / 65) * (64 / 65) / n)


def test_effective_rank_of_collapsed_predictions_is_one():
    ctx, tgt = _data(n=100)
    const = _unit(np.ones((1, ctx.shape[2])))
    got = evaluate(lambda c: (np.repeat(const, len(c), 0), np.repeat(const, len(c), 0)), ctx, tgt)
    assert got.effective_rank == pytest.approx(1.0, abs=1e-3)
    assert got.target_effective_rank > 5
    assert got.mean_pairwise_cos == pytest.approx(1.0, abs=1e-5)


def test_diverged_predictions_score_worst_not_best():
    # NaN predictions (a diverged model) must not crash the evaluation nor rank first: NaN > x is False,
    # so a naive count of "candidates above the target" would give every row rank 1.
    ctx, tgt = _data(n=100)
    nan = np.full((1, ctx.shape[2]), np.nan, np.float32)
    got = evaluate(lambda c: (np.repeat(nan, len(c), 0), c[:, -1]), ctx, tgt, pool_size=16)
    assert np.isnan(got.cos_next) and np.isnan(got.margin) and np.isnan(got.effective_rank)
    assert got.recall_at_1 == 0.0 and got.rank_mean == got.n_candidates == 17
    assert np.isfinite(got.raw_cos_next)  # the raw output was finite and is still scored
