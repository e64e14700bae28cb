"""Loss-term imbalance: one term flat while another falls."""

import pytest

from lvmdiag.report.detectors import imbalance

CFG = {"w_rank": 1.0, "w_margin": 0.5, "margin": 0.07}
RANK = [2.68, 2.55, 2.44, 2.35, 2.27, 2.20, 2.14, 2.10, 2.07, 2.04]
MARGIN = [0.128, 0.126, 0.124, 0.125, 0.123, 0.124, 0.122, 0.123, 0.124, 0.124]


def test_fires_on_flat_margin_and_falling_rank(make_history):
    h = make_history(train_log={"loss_rank": RANK, "loss_margin": MARGIN, "loss_teacher": [0.4, 0.39] + [0.0] * 8}, config=CFG)
    (f,) = imbalance.detect(h).findings
    assert f.code == "loss_term_flat" and f.cause == "loss_balance"
    assert "-3.1%" in f.message and "-23.9%" in f.message
    assert "loss_teacher" not in f.title  # switched off after warmup: not "falling"
    share = 0.5 * 0.124 / (0.5 * 0.124 + 2.04)
    assert f"{share:.1%}" in f.message


def test_silent_when_both_fall(make_history):
    h = make_history(train_log={"loss_rank": RANK, "loss_margin": [m * (1 - 0.05 * i) for i, m in enumerate(MARGIN)]}, config=CFG)
    result = imbalance.detect(h)
    assert not result.fired and result.ruled_out


@pytest.mark.parametrize("change, fires", [(-0.049, True), (-0.051, False)])
def test_flat_threshold(make_history, change, fires):
    margin = [0.1, 0.1, 0.1 * (1 + change)]
    h = make_history(train_log={"loss_rank": [3.0, 2.5, 2.0], "loss_margin": margin}, config=CFG)
    assert imbalance.detect(h).fired is fires


def test_skipped_with_one_term(make_history):
    assert imbalance.detect(make_history(train_log={"loss_rank": RANK})).skipped


def test_ruled_out_reason_names_a_flat_term_when_nothing_fell_far_enough(make_history):
    # loss_margin flat (-2%), loss_rank down only 12%: the rule does not fire, and the reason must not
    # claim that no term was flat
    h = make_history(train_log={"loss_rank": [2.68, 2.55, 2.35], "loss_margin": [0.128, 0.126, 0.125]}, config=CFG)
    result = imbalance.detect(h)
    (r,) = result.ruled_out
    assert not result.fired and "loss_margin stayed flat, but no other term fell that much" in r.reason
