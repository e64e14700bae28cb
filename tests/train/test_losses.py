import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lvmdiag.train.losses import forward_signal, gate_weights, info_nce, p7_loss, prev_repel, teacher_pull

from .conftest import tiny_config


def _slow_info_nce(q, t, c_last, tau, rand=None):
    """Independent loop: -log softmax over [in-batch targets, own c_last, random negatives]."""
    out = []
    for i in range(q.shape[0]):
        cands = [t[j] for j in range(t.shape[0])] + [c_last[i]] + ([] if rand is None else list(rand))
        logits = np.array([q[i] @ v for v in cands]) / tau
        out.append(np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[i])
    return np.array(out)


def _unit(x):
    return F.normalize(torch.as_tensor(x, dtype=torch.float32), dim=-1)


def test_info_nce_matches_a_slow_loop():
    g = torch.Generator().manual_seed(0)
    q, t, c, r = (_unit(torch.randn(s, 8, generator=g)) for s in (6, 6, 6, 3))
    got = info_nce(q, t, c, 0.07, random_negatives=r).numpy()
    want = _slow_info_nce(q.double().numpy(), t.double().numpy(), c.double().numpy(), 0.07, r.double().numpy())
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_duplicate_targets_are_not_counted_as_negatives():
    g = torch.Generator().manual_seed(1)
    q, t, c = (_unit(torch.randn(4, 8, generator=g)) for _ in range(3))
    t_dup = t.clone()
    t_dup[1] = t_dup[0]  # rows 0 and 1 share their target (a duplicated chunk)
    got = info_nce(q, t_dup, c, 0.1)
    # for row 0 the candidates are t0 (positive), t2, t3, c0: t1 == t0 is masked
    q0 = q[0].double().numpy()
    logits = np.array([q0 @ v.double().numpy() for v in (t[0], t[2], t[3], c[0])]) / 0.1
    want0 = np.log(np.exp(logits).sum()) - logits[0]
    assert float(got[0]) == pytest.approx(want0, rel=1e-4)


def test_hard_negative_absent_when_masked():
    g = torch.Generator().manual_seed(2)
    q, t, c, h = (_unit(torch.randn(5, 8, generator=g)) for _ in range(4))
    base = info_nce(q, t, c, 0.1)
    masked = info_nce(q, t, c, 0.1, hard_negatives=h, hard_mask=torch.zeros(5, dtype=torch.bool))
    used = info_nce(q, t, c, 0.1, hard_negatives=h, hard_mask=torch.ones(5, dtype=torch.bool))
    assert torch.allclose(base, masked, atol=1e-6)
    assert (used > base).all()  # one more negative always raises the loss


def test_prev_repel_hinge_values():
    q = _unit([[1.0, 0.0], [1.0, 0.0]])
    t = _unit([[1.0, 0.0], [0.0, 1.0]])
    c = _unit([[0.0, 1.0], [1.0, 0.0]])
    got = prev_repel(q, t, c, 0.07)
    assert got.tolist() == pytest.approx([0.0, 0.07 - 0.0 + 1.0])


def test_teacher_pull_only_on_samples_below_threshold():
    q = _unit([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    t = _unit([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.1]])
    loss, n = teacher_pull(q, t, 0.2)
    cos = np.array([1.0, 0.0, -1.0 / math.sqrt(1.01)])
    assert n == 2
    assert float(loss) == pytest.approx(np.mean(1 - cos[1:]), rel=1e-5)


def test_forward_signal_is_per_sample_and_not_the_degenerate_upstream_formula():
    # Delta_i = cos(t, c_K) - cos(t, c_{K-1}). Upstream's cos(c_last, t) - cos(c_last, c_last) is <= 0 always.
    e = torch.eye(4)
    ctx = torch.stack([torch.stack([e[0], e[1], e[2]]), torch.stack([e[0], e[2], e[1]])])  # (2, 3, 4)
    t = _unit(torch.stack([e[2] + 0.1 * e[1], e[2] + 0.1 * e[1]]))
    delta = forward_signal(ctx, t)
    assert delta[0] > 0 > delta[1]
    assert delta[0] == pytest.approx(float(-delta[1]), rel=1e-6)


def test_gate_weight_varies_across_samples_with_varied_forward_signal():
    # Half the windows move forward (target close to c_last), half move back (target close to c_{K-1}).
    rng = np.random.default_rng(0)
    n, k, d = 200, 5, 16
    ctx = rng.standard_normal((n, k, d))
    ctx /= np.linalg.norm(ctx, axis=-1, keepdims=True)
    forward = np.arange(n) % 2 == 0
    src = np.where(forward[:, None], ctx[:, -1], ctx[:, -2])
    tgt = src + 0.3 * rng.standard_normal((n, d)) / np.sqrt(d)
    ctx_t, tgt_t = _unit(ctx), _unit(tgt)
    gate = gate_weights(ctx_t, tgt_t, threshold=0.03, weak_weight=0.25)
    assert set(gate.unique().tolist()) == {0.25, 1.0}
    assert (gate[torch.from_numpy(forward)] == 1.0).all() and (gate[torch.from_numpy(~forward)] == 0.25).all()
    # and p7_loss reports exactly these per-sample weights
    q = _unit(torch.randn(n, d))
    terms = p7_loss(q, ctx_t, tgt_t, tiny_config(), teacher_active=False)
    assert torch.equal(terms.gate, gate)


def test_p7_loss_combines_weighted_terms():
    g = torch.Generator().manual_seed(3)
    ctx = _unit(torch.randn(8, 5, 6, generator=g))
    t, q = _unit(torch.randn(8, 6, generator=g)), _unit(torch.randn(8, 6, generator=g))
    cfg = tiny_config(w_rank=1.0, w_margin=0.5, w_teacher=0.2, gate_weak_weight=0.25)
    on = p7_loss(q, ctx, t, cfg, teacher_active=True)
    off = p7_loss(q, ctx, t, cfg, teacher_active=False)
    gate = gate_weights(ctx, t, cfg.gate_threshold, cfg.gate_weak_weight).double().numpy()
    assert set(gate.tolist()) == {0.25, 1.0}  # both kinds of window in this batch
    # gate-weighted means, written out
    rank = sum(g * float(x) for g, x in zip(gate, info_nce(q, t, ctx[:, -1], cfg.temperature))) / gate.sum()
    margin = sum(g * float(x) for g, x in zip(gate, prev_repel(q, t, ctx[:, -1], cfg.margin))) / gate.sum()
    assert float(off.loss_rank) == pytest.approx(rank, rel=1e-5)
    assert float(off.loss_margin) == pytest.approx(margin, rel=1e-5)
    assert float(off.loss) == pytest.approx(float(rank + 0.5 * margin), rel=1e-5)
    assert float(on.loss) == pytest.approx(float(off.loss + 0.2 * on.loss_teacher), rel=1e-5)


def test_p7_loss_uses_cosines_for_vectors_that_are_not_unit_length():
    # Encoders other than GTR-T5 may not normalise: every term must depend on cosines only, so
    # rescaling the context, target and negative vectors row by row changes nothing.
    g = torch.Generator().manual_seed(4)
    ctx = _unit(torch.randn(8, 5, 6, generator=g))
    t, q = _unit(torch.randn(8, 6, generator=g)), _unit(torch.randn(8, 6, generator=g))
    rand, hard = _unit(torch.randn(3, 6, generator=g)), _unit(torch.randn(8, 6, generator=g))
    mask = torch.arange(8) % 2 == 0
    cfg = tiny_config(teacher_threshold=0.9)  # every sample in the teacher pull
    unit = p7_loss(q, ctx, t, cfg, teacher_active=True, random_negatives=rand, hard_negatives=hard, hard_mask=mask)
    ctx_scaled = ctx * (0.5 + 3 * torch.rand(8, 5, 1, generator=g))
    t_scaled = t * (0.5 + 3 * torch.rand(8, 1, generator=g))
    scaled = p7_loss(q, ctx_scaled, t_scaled, cfg, teacher_active=True, random_negatives=rand * 4.0,
                     hard_negatives=hard * 0.3, hard_mask=mask)
    for name in ("loss", "loss_rank", "loss_margin", "loss_teacher"):
        assert float(getattr(scaled, name)) == pytest.approx(float(getattr(unit, name)), rel=1e-5), name
    assert torch.equal(scaled.gate, unit.gate) and scaled.teacher_violations == unit.teacher_violations == 8


def test_loss_rank_sits_at_ln_n_for_a_model_at_chance_whatever_the_gate():
    # q orthogonal to every candidate: all logits 0, so every InfoNCE_i = ln(B + 1) exactly. The gated
    # loss_rank must stay ln(B + 1) (the chance level the report compares with), not mean(gate) * ln(B + 1).
    b, d = 6, 13
    e = torch.eye(d)
    t = e[:b]
    ctx = e[b:2 * b].unsqueeze(1).repeat(1, 5, 1).clone()  # (B, 5, D)
    for i in range(b):
        towards = F.normalize(e[i] + e[b + i], dim=0)
        if i % 2 == 0:  # forward window: the target is closer to c_K than to c_{K-1}
            ctx[i, -1], ctx[i, -2] = towards, e[b + i]
        else:
            ctx[i, -1], ctx[i, -2] = e[b + i], towards
    q = e[-1].repeat(b, 1)
    cfg = tiny_config(gate_weak_weight=0.25)
    terms = p7_loss(q, ctx, t, cfg, teacher_active=False)
    assert terms.gate.tolist() == [1.0, 0.25] * 3
    assert float(terms.loss_rank) == pytest.approx(math.log(b + 1), rel=1e-6)
    assert float(terms.loss_margin) == pytest.approx(cfg.margin, rel=1e-6)
    # a gate that weighs every sample alike changes nothing
    same = p7_loss(q, ctx, t, tiny_config(gate_weak_weight=1.0), teacher_active=False)
    assert float(same.loss_rank) == pytest.approx(float(terms.loss_rank), rel=1e-6)
