"""Inert mechanisms: configured, logged, never acting."""

from lvmdiag.report.detectors import inert

CFG = {"anchor_learnable": True, "gate_weak_weight": 0.25, "w_teacher": 0.2, "warmup_epochs": 2, "w_margin": 0.5}


def _codes(result):
    return sorted(f.code for f in result.findings)


def test_frozen_learnable_lambda_and_constant_gate_fire(make_history):
    h = make_history(train_log={"anchor_lambda": [0.8] * 10, "gate_weight_mean": [0.25] * 10,
                                "loss_teacher": [0.4, 0.39] + [0.0] * 8}, config=CFG)
    result = inert.detect(h)
    assert _codes(result) == ["constant_weight", "learnable_lambda_frozen"]
    gate = next(f for f in result.findings if f.code == "constant_weight")
    assert "every sample got the weak weight" in gate.message
    assert any("teacher" in r.hypothesis for r in result.ruled_out)


def test_silent_when_mechanisms_act(make_history):
    h = make_history(train_log={"anchor_lambda": [0.8, 0.79, 0.77, 0.76], "gate_weight_mean": [0.7, 0.72, 0.71, 0.73],
                                "loss_teacher": [0.4, 0.3, 0.0, 0.0], "loss_margin": [0.1, 0.09, 0.08, 0.07]}, config=CFG)
    assert inert.detect(h).findings == ()


def test_fixed_lambda_is_not_inert(make_history):
    h = make_history(train_log={"anchor_lambda": [0.8] * 5}, config={**CFG, "anchor_learnable": False})
    assert inert.detect(h).findings == ()


def test_teacher_zero_throughout_fires(make_history):
    h = make_history(train_log={"loss_teacher": [0.0] * 6}, config=CFG)
    assert _codes(inert.detect(h)) == ["warmup_term_never_active"]


def test_constant_weighted_loss_term_fires(make_history):
    h = make_history(train_log={"loss_margin": [0.07] * 5}, config=CFG)
    assert _codes(inert.detect(h)) == ["constant_loss_term"]


def test_gate_of_one_filters_nothing(make_history):
    h = make_history(train_log={"gate_weight_mean": [1.0] * 4}, config=CFG)
    (f,) = inert.detect(h).findings
    assert "filtered nothing" in f.message


def test_data_determined_gate_mean_is_not_inert(make_history):
    # a per-sample gate computed from each window's own data has the same mean every epoch
    h = make_history(train_log={"gate_weight_mean": [0.946] * 4, "gate_weight_std": [0.19] * 4}, config=CFG)
    assert inert.detect(h).findings == ()


def test_other_constant_weight_series_fire(make_history):
    h = make_history(train_log={"rank_weight_schedule": [1.0] * 4}, config=CFG)
    assert [f.code for f in inert.detect(h).findings] == ["constant_weight"]


def test_too_few_epochs_to_call_constant(make_history):
    h = make_history(train_log={"anchor_lambda": [0.8, 0.8]}, config=CFG)
    assert inert.detect(h).findings == ()
