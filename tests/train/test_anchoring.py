import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lvmdiag.train.anchoring import SemanticAnchor, context_anchor


def test_fixed_lambda_matches_the_formula_and_is_not_a_parameter():
    anchor = SemanticAnchor(0.8, learnable=False)
    assert list(anchor.parameters()) == []
    q = F.normalize(torch.randn(3, 8), dim=-1)
    ctx = torch.randn(3, 5, 8)
    c = F.normalize(ctx.mean(1), dim=-1)
    expected = F.normalize(0.8 * q + 0.2 * c, dim=-1)
    assert torch.allclose(anchor(q, context_anchor(ctx)), expected, atol=1e-6)


def test_learnable_lambda_starts_at_its_value_and_stays_in_bounds():
    anchor = SemanticAnchor(0.8, learnable=True, lo=0.5, hi=1.0)
    assert anchor.lam().item() == pytest.approx(0.8, abs=1e-6)
    for theta in (-1e4, -3.0, 0.0, 3.0, 1e4):
        with torch.no_grad():
            anchor.theta.fill_(theta)
        assert 0.5 <= anchor.lam().item() <= 1.0


def test_learnable_lambda_gets_a_gradient_toward_the_better_side():
    # If the target is the context anchor itself, lowering lambda helps: d loss / d theta > 0.
    torch.manual_seed(0)
    anchor = SemanticAnchor(0.8, learnable=True, lo=0.0, hi=1.0)
    q = F.normalize(torch.randn(16, 8), dim=-1)
    c = F.normalize(torch.randn(16, 8), dim=-1)
    loss = -(anchor(q, c) * c).sum(-1).mean()
    loss.backward()
    assert anchor.theta.grad is not None and float(anchor.theta.grad) > 0
    # a clamp-based lambda at its bound would have no gradient; the sigmoid form still has one
    assert np.isfinite(float(anchor.theta.grad))
