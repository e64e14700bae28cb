"""Collapse detector: fires on a planted drop at a schedule event, silent on healthy curves."""

import numpy as np
import pytest

from lvmdiag.report.detectors import collapse
from lvmdiag.report.events import schedule_events

P7_VAL = {
    "cos_next": [0.372, 0.396, 0.241, 0.252, 0.259, 0.263, 0.266, 0.268, 0.270, 0.271],
    "cos_prev": [0.436, 0.455, 0.305, 0.318, 0.325, 0.330, 0.333, 0.335, 0.337, 0.338],
    "cos_anchor": [0.571, 0.588, 0.391, 0.405, 0.412, 0.418, 0.422, 0.426, 0.428, 0.430],
}
WARMUP = {"warmup_epochs": 2, "epochs": 10}


def _run(h, params=None):
    return collapse.detect(h, schedule_events(h), params)


def test_fires_on_planted_collapse_at_warmup_end(make_history):
    result = _run(make_history(val=P7_VAL, config=WARMUP))
    (f,) = result.findings
    assert f.code == "collapse_at_event" and f.severity == "critical"
    assert f.epochs == (2, 3)
    # relative drops computed by hand: (0.241-0.396)/0.396, (0.305-0.455)/0.455, (0.391-0.588)/0.588
    for expected in (-0.155 / 0.396, -0.150 / 0.455, -0.197 / 0.588):
        assert f"{expected * 100:+.1f}%" in f.message
    assert "-39.1%" in f.message and "-33.0%" in f.message and "-33.5%" in f.message


def test_recovered_collapse_is_a_warning(make_history):
    val = {k: v[:3] + [v[1]] * 7 for k, v in P7_VAL.items()}  # back to the pre-drop value at epoch 4
    (f,) = _run(make_history(val=val, config=WARMUP)).findings
    assert f.severity == "warning" and "recovered to 90%" in f.message


def test_drop_without_event_is_a_sudden_drop(make_history):
    (f,) = _run(make_history(val=P7_VAL, config={"epochs": 10})).findings
    assert f.code == "sudden_drop" and f.cause is None


def test_event_more_than_window_away_is_not_aligned(make_history):
    result = _run(make_history(val=P7_VAL, config={"warmup_epochs": 5, "epochs": 10}))  # event at epoch 6
    assert [f.code for f in result.findings] == ["sudden_drop"]


def test_silent_on_healthy_curves(make_history):
    e = np.arange(1, 11)
    val = {"cos_next": 0.4 + 0.2 * (1 - np.exp(-e / 3)), "cos_prev": 0.4 + 0.01 * e / 10, "cos_anchor": 0.7 - 0.001 * e}
    result = _run(make_history(val=val, config=WARMUP))
    assert result.findings == () and result.ruled_out


@pytest.mark.parametrize("drop, fires", [(0.19, False), (0.21, True)])
def test_threshold_is_the_documented_20_percent(make_history, drop, fires):
    val = {k: [0.5, 0.5, 0.5 * (1 - drop), 0.5 * (1 - drop)] for k in ("cos_next", "cos_prev", "cos_anchor")}
    assert _run(make_history(val=val, config={"warmup_epochs": 2})).fired is fires


def test_only_a_minority_dropping_is_not_a_collapse(make_history):
    val = {"cos_next": [0.5, 0.5, 0.3, 0.3], "cos_prev": [0.5, 0.5, 0.5, 0.5], "cos_anchor": [0.5, 0.5, 0.5, 0.5]}
    assert not _run(make_history(val=val, config={"warmup_epochs": 2})).fired


def test_skipped_without_cosines(make_history):
    assert _run(make_history(train_log={"loss": [1.0, 0.9]})).skipped
