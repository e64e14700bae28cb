"""Loss accounting: the total vs the weighted sum of its logged terms."""

from lvmdiag.report.detectors import accounting

CFG = {"w_rank": 1.0, "w_margin": 0.5, "w_teacher": 0.2}


def test_fires_when_terms_do_not_add_up(make_history):
    h = make_history(train_log={"loss": [0.9, 0.7, 0.526], "loss_rank": [2.68, 2.4, 2.04],
                                "loss_margin": [0.128, 0.125, 0.124], "loss_teacher": [0.4, 0.0, 0.0]}, config=CFG)
    (f,) = accounting.detect(h).findings
    assert "0.526" in f.message and "2.102" in f.message  # 2.04 + 0.5 * 0.124


def test_silent_when_total_is_the_weighted_sum(make_history):
    rank, margin, teacher = [2.6, 2.4, 2.2], [0.1, 0.09, 0.08], [0.3, 0.0, 0.0]
    total = [r + 0.5 * m + 0.2 * t for r, m, t in zip(rank, margin, teacher)]
    h = make_history(train_log={"loss": total, "loss_rank": rank, "loss_margin": margin, "loss_teacher": teacher}, config=CFG)
    result = accounting.detect(h)
    assert not result.fired and result.ruled_out


def test_skipped_without_weights(make_history):
    h = make_history(train_log={"loss": [1.0, 0.9], "loss_rank": [1.0, 0.9]})
    assert accounting.detect(h).skipped


def test_names_a_logged_weight_equal_to_the_total_over_the_sum(make_history):
    # issue 14.3: a gate that scales the whole weighted loss by 0.25 makes total / sum = gate_weight_mean
    rank, margin, teacher = [2.6, 2.4, 2.04], [0.13, 0.125, 0.124], [0.4, 0.0, 0.0]
    summed = [r + 0.5 * m + 0.2 * t for r, m, t in zip(rank, margin, teacher)]
    h = make_history(train_log={"loss": [round(0.25 * s, 3) for s in summed], "loss_rank": rank,
                                "loss_margin": margin, "loss_teacher": teacher,
                                "gate_weight_mean": [0.25, 0.25, 0.25]}, config=CFG)
    (f,) = accounting.detect(h).findings
    assert "gate_weight_mean" in f.message and "constant multiplier" in f.message
    assert any("gate_weight_mean" in e.label for e in f.evidence)


def test_does_not_name_a_weight_that_does_not_match(make_history):
    rank, margin, teacher = [2.6, 2.4, 2.04], [0.13, 0.125, 0.124], [0.4, 0.0, 0.0]
    summed = [r + 0.5 * m + 0.2 * t for r, m, t in zip(rank, margin, teacher)]
    h = make_history(train_log={"loss": [0.25 * s for s in summed], "loss_rank": rank, "loss_margin": margin,
                                "loss_teacher": teacher, "gate_weight_mean": [0.25, 0.5, 0.9]}, config=CFG)
    (f,) = accounting.detect(h).findings
    assert "gate_weight_mean" not in f.message
