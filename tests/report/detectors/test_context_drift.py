"""Context drift: fires when cos_anchor falls, recovers the raw alignment by inverting the anchoring."""

import numpy as np

from lvmdiag.report.anchoring import raw_cos_from_anchored
from lvmdiag.report.detectors import context_drift
from lvmdiag.report.events import schedule_events

ANCHOR = [0.571, 0.588, 0.391, 0.405, 0.412, 0.418, 0.422, 0.426, 0.428, 0.430]


def test_fires_and_recovers_raw_alignment_with_logged_lambda(make_history):
    h = make_history(val={"cos_anchor": ANCHOR}, train_log={"anchor_lambda": [0.8] * 10},
                     config={"warmup_epochs": 2, "anchor_lambda": 0.8})
    (f,) = context_drift.detect(h, schedule_events(h)).findings
    assert f.epochs == (2, 3) and f.cause == "schedule_transition"
    # the hand-written report's claim: raw alignment ~0.41 -> ~0.17
    x = raw_cos_from_anchored(np.array([0.588, 0.391]), 0.8)
    assert abs(x[0] - 0.41) < 0.01 and abs(x[1] - 0.17) < 0.01
    assert f"went from {x[0]:.3f} to {x[1]:.3f}" in f.message
    assert "inverted from cos_anchor with the logged anchor_lambda" in f.message
    assert "0.243" in f.message  # anchoring floor 0.2 / sqrt(0.68)


def test_uses_config_lambda_when_not_logged(make_history):
    h = make_history(val={"cos_anchor": ANCHOR}, config={"anchor_lambda": 0.8})
    (f,) = context_drift.detect(h).findings
    assert "config's anchor_lambda" in f.message


def test_prefers_logged_raw_alignment(make_history):
    h = make_history(val={"cos_anchor": ANCHOR, "raw_cos_anchor": [0.3] * 2 + [0.1] * 8}, config={"anchor_lambda": 0.8})
    (f,) = context_drift.detect(h).findings
    assert "logged raw_cos_anchor" in f.message and "went from 0.300 to 0.100" in f.message


def test_silent_on_stable_anchor(make_history):
    h = make_history(val={"cos_anchor": [0.70, 0.71, 0.70, 0.69, 0.72]}, config={"anchor_lambda": 0.8})
    result = context_drift.detect(h)
    assert not result.fired and result.ruled_out


def test_silent_on_19_percent_fall(make_history):
    h = make_history(val={"cos_anchor": [0.5, 0.5 * 0.81, 0.5 * 0.81]})
    assert not context_drift.detect(h).fired
    h = make_history(val={"cos_anchor": [0.5, 0.5 * 0.79, 0.5 * 0.79]})
    assert context_drift.detect(h).fired
