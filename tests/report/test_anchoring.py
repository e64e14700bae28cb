"""Anchoring inversion against an explicit vector construction (independent of the closed form)."""

import numpy as np
import pytest

from lvmdiag.report.anchoring import anchored_cos, raw_cos_from_anchored


def _explicit(x: float, lam: float, d: int = 64, seed: int = 0) -> float:
    """Build unit c and unit q with cos(q, c) = x, anchor q, and measure cos(q', c) directly."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal(d)
    c /= np.linalg.norm(c)
    e = rng.standard_normal(d)
    e -= (e @ c) * c
    e /= np.linalg.norm(e)
    q = x * c + np.sqrt(1 - x**2) * e
    qa = lam * q + (1 - lam) * c
    qa /= np.linalg.norm(qa)
    return float(qa @ c)


@pytest.mark.parametrize("lam", [0.5, 0.6, 0.8, 0.95])
@pytest.mark.parametrize("x", [-0.9, -0.3, 0.0, 0.17, 0.41, 0.8, 0.99])
def test_forward_map_matches_vectors_and_inverts(lam, x):
    y = _explicit(x, lam)
    assert anchored_cos(x, lam) == pytest.approx(y, abs=1e-12)
    assert raw_cos_from_anchored(y, lam) == pytest.approx(x, abs=1e-9)


def test_hand_written_report_numbers():
    assert raw_cos_from_anchored(0.588, 0.8) == pytest.approx(0.41, abs=0.005)
    assert raw_cos_from_anchored(0.391, 0.8) == pytest.approx(0.17, abs=0.005)


def test_not_invertible_cases_are_nan():
    assert np.isnan(raw_cos_from_anchored(0.5, 0.0))  # lam = 0: q' = c whatever q is
    assert np.isnan(raw_cos_from_anchored(1.5, 0.8))  # not a cosine
    assert raw_cos_from_anchored(0.7, 1.0) == pytest.approx(0.7)  # no anchoring: identity


def test_vectorised_over_epochs():
    lam = np.array([0.8, 0.7, 0.9])
    x = np.array([0.2, 0.4, -0.1])
    assert np.allclose(raw_cos_from_anchored(anchored_cos(x, lam), lam), x)
