"""Train/val mismatch with a metric-definition check."""

import numpy as np
import pytest

from lvmdiag.report.detectors import mismatch

VAL = {"cos_next": [0.372, 0.396, 0.241, 0.252], "cos_prev": [0.436, 0.455, 0.305, 0.318],
       "margin": [-0.064, -0.059, -0.064, -0.066]}
LOSS_MARGIN = [0.128, 0.126, 0.124, 0.125]


def test_loss_labelled_margin_is_not_compared_with_signed_margin(make_history):
    h = make_history(val=VAL, train_log={"loss_margin": LOSS_MARGIN}, config={"margin": 0.07},
                     labels={"train_log.loss_margin": "Train metrics: Margin"})
    result = mismatch.detect(h)
    (f,) = result.findings
    assert f.code == "margin_definition_mismatch" and f.cause == "metric_definitions"
    assert "do not measure the same thing" in f.message
    (r,) = result.ruled_out
    assert "Train is forward, val is backward" in r.hypothesis
    ev = {e.label: e.value for e in f.evidence}
    # Jensen: val hinge >= m - mean val margin = 0.07 + 0.066; train signed margin >= m - hinge = 0.07 - 0.125
    val_bound = next(v for k, v in ev.items() if k.startswith("val hinge implied"))
    train_bound = next(v for k, v in ev.items() if k.startswith("train signed margin implied"))
    assert val_bound == pytest.approx(0.07 + 0.066)
    assert train_bound == pytest.approx(0.07 - 0.125)
    assert "cos_next < cos_prev" in f.message  # hinge 0.125 > m = 0.07


def test_jensen_bound_holds_on_simulated_windows():
    """The bound the detector reports is a real inequality: mean hinge >= max(0, m - mean margin)."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        s = rng.normal(rng.normal(0, 0.1), rng.uniform(0.01, 0.3), size=500)
        assert np.mean(np.maximum(0, 0.07 - s)) >= max(0.0, 0.07 - s.mean()) - 1e-12


def test_real_gap_when_both_are_signed(make_history):
    train = {"cos_next": [0.5, 0.55, 0.6, 0.62], "cos_prev": [0.45, 0.46, 0.47, 0.47]}
    train["margin"] = list(np.subtract(train["cos_next"], train["cos_prev"]))
    h = make_history(val=VAL, train_eval=train, train_log={"loss_margin": LOSS_MARGIN})
    (f,) = mismatch.detect(h).findings
    assert f.code == "train_val_margin_gap" and f.cause == "train_val_gap"
    assert "0.150" in f.message and "-0.066" in f.message


def test_silent_when_healthy(make_history):
    val = {"cos_next": [0.5, 0.6], "cos_prev": [0.45, 0.45], "margin": [0.05, 0.15]}
    train = {"cos_next": [0.52, 0.62], "cos_prev": [0.45, 0.45], "margin": [0.07, 0.17]}
    h = make_history(val=val, train_eval=train, train_log={"loss_margin": [0.05, 0.03]})
    result = mismatch.detect(h)
    assert not result.fired and not result.skipped


def test_silent_when_val_margin_positive_and_train_is_a_loss(make_history):
    val = {"cos_next": [0.5, 0.6], "cos_prev": [0.45, 0.45], "margin": [0.05, 0.15]}
    assert not mismatch.detect(make_history(val=val, train_log={"loss_margin": [0.05, 0.03]})).fired


def test_unknown_definition_is_reported_as_such(make_history):
    # a generic CSV column "train_margin": never negative, nothing to check it against
    h = make_history(val=VAL, train_eval={"margin": [0.12, 0.12, 0.13, 0.12]})
    (f,) = mismatch.detect(h).findings
    assert f.code == "margin_definition_unknown" and f.severity == "info"


def test_classify_train_margin_equal_to_loss_term_as_loss(make_history):
    h = make_history(val=VAL, train_eval={"margin": LOSS_MARGIN}, train_log={"loss_margin": LOSS_MARGIN})
    d = mismatch.classify(h, "train.margin")
    assert d.kind == "loss" and "loss_margin" in d.reason
    assert mismatch.classify(h, "val.margin").kind == "signed"


def test_classify_by_cos_difference(make_history):
    val = {"cos_next": [0.5, 0.6], "cos_prev": [0.45, 0.45], "margin": [0.05, 0.15]}
    d = mismatch.classify(make_history(val=val), "val.margin")
    assert d.kind == "signed" and "cos_next - cos_prev" in d.reason
