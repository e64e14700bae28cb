"""Plateau at the InfoNCE chance level ln(n_candidates)."""

import math

from lvmdiag.report.detectors import chance


def test_fires_at_ln_of_batch_plus_one(make_history):
    c = math.log(65)
    h = make_history(train_log={"loss_rank": [c + 0.01, c - 0.01, c + 0.005, c]}, config={"batch_size": 64})
    (f,) = chance.detect(h).findings
    assert f.severity == "critical" and f"{c:.3f}" in f.message


def test_random_and_hard_negatives_raise_the_chance_level(make_history):
    cfg = {"batch_size": 64, "n_random_negatives": 935, "hard_negatives": "same_article"}  # n = 64 + 1 + 935 + 1
    c = math.log(1001)
    h = make_history(train_log={"loss_rank": [c] * 3}, config=cfg)
    (f,) = chance.detect(h).findings
    assert "ln(1001)" in f.message
    h = make_history(train_log={"loss_rank": [math.log(65)] * 3}, config=cfg)
    assert not chance.detect(h).fired  # ln(65) is 60% of ln(1001): above chance


def test_above_chance_level_also_fires(make_history):
    """A loss above ln(n) is no better than chance (Jensen), e.g. an untrained model with tau = 0.07."""
    h = make_history(train_log={"loss_rank": [5.3, 4.9, 4.7, 4.64]}, config={"batch_size": 32})
    assert chance.detect(h).fired


def test_jensen_lower_bound_on_random_logits():
    """The rule's premise: logits that do not single out the positive give mean InfoNCE >= ln(n)."""
    import numpy as np

    rng = np.random.default_rng(0)
    for n in (5, 33, 65):
        logits = rng.normal(0, 3, size=(20000, n))
        loss = np.log(np.exp(logits).sum(axis=1)) - logits[:, 0]
        assert loss.mean() >= math.log(n)


def test_silent_well_below_chance(make_history):
    h = make_history(train_log={"loss_rank": [2.68, 2.3, 2.04]}, config={"batch_size": 64})
    result = chance.detect(h)
    ratio = (2.68 + 2.3 + 2.04) / 3 / math.log(65)
    assert not result.fired and result.ruled_out[0].evidence[2].value == f"{ratio:.0%}"


def test_boundary_is_5_percent(make_history):
    c = math.log(65)
    assert chance.detect(make_history(train_log={"loss_rank": [0.96 * c] * 3}, config={"batch_size": 64})).fired
    assert not chance.detect(make_history(train_log={"loss_rank": [0.94 * c] * 3}, config={"batch_size": 64})).fired


def test_skipped_when_the_tail_is_not_finite(make_history):
    h = make_history(train_log={"loss_rank": [2.8, 2.5, 7.7, math.nan]}, config={"batch_size": 64})
    assert chance.detect(h).skipped


def test_skipped_without_candidates(make_history):
    assert chance.detect(make_history(train_log={"loss_rank": [4.0] * 3})).skipped
