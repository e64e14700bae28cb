"""The metric helper uses the definitions of ``lvmdiag evaluate``: checked against the evaluator itself, an
independent per-row loop, torch inputs, and shard merging."""

import numpy as np
import pytest

from lvmdiag.errors import InputError
from lvmdiag.monitor import WindowMetrics, window_metrics
from lvmdiag.train.evaluate import evaluate


def _data(seed=0, n=257, k=4, d=12):
    rng = np.random.default_rng(seed)
    ctx = rng.normal(size=(n, k, d)).astype(np.float32)
    tgt = (0.7 * ctx[:, -1] + rng.normal(size=(n, d))).astype(np.float32)
    w = rng.normal(size=(d, d)).astype(np.float32)
    pred = (ctx[:, -1] @ w + 0.3 * ctx.mean(1)).astype(np.float32)
    return ctx, tgt, pred, w


def _slow(pred, ctx, tgt):
    rows = []
    for q, c, t in zip(pred.astype(float), ctx.astype(float), tgt.astype(float)):
        cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
        rows.append((cos(q, t), cos(q, c[-1]), cos(q, c.mean(0))))
    nxt, prev, anchor = np.mean(rows, axis=0)
    return {"cos_next": nxt, "cos_prev": prev, "margin": nxt - prev, "cos_anchor": anchor}


def test_same_numbers_as_the_evaluator_and_a_slow_loop():
    ctx, tgt, pred, w = _data()
    got = window_metrics(pred, ctx, tgt)
    ev = evaluate(lambda c: ((c[:, -1] @ w + 0.3 * c.mean(1)),) * 2, ctx, tgt)
    slow = _slow(pred, ctx, tgt)
    for name in ("cos_next", "cos_prev", "margin", "cos_anchor"):
        assert got[name] == pytest.approx(getattr(ev, name), abs=1e-5), name  # float32 sums in different orders
        assert got[name] == pytest.approx(slow[name], abs=1e-5), name
    assert got["margin"] < 0 < got["cos_next"]  # a signed margin, not a hinge loss


def test_torch_inputs_and_merged_shards_equal_one_pass():
    torch = pytest.importorskip("torch")
    ctx, tgt, pred, _ = _data(1)
    one = window_metrics(pred, ctx, tgt)
    as_torch = window_metrics(torch.from_numpy(pred).requires_grad_(), torch.from_numpy(ctx), torch.from_numpy(tgt))
    a, b = WindowMetrics(), WindowMetrics()
    a.update(pred[:100], ctx[:100], tgt[:100])
    b.update(torch.from_numpy(pred[100:]), ctx[100:], tgt[100:])
    merged = a.merge(b).compute()
    for name in one:
        assert as_torch[name] == pytest.approx(one[name], abs=1e-6)
        assert merged[name] == pytest.approx(one[name], abs=1e-6)
    empty = WindowMetrics().compute()
    assert all(np.isnan(v) for v in empty.values())


def test_shape_errors_name_the_argument():
    ctx, tgt, pred, _ = _data()
    with pytest.raises(InputError, match="contexts"):
        window_metrics(pred, ctx[:, 0], tgt)
    with pytest.raises(InputError, match="predictions"):
        window_metrics(pred[:, :5], ctx, tgt)
