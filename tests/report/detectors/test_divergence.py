"""Divergence to NaN/Inf."""

import math

from lvmdiag.report.detectors import divergence

NAN = math.nan


def test_fires_at_first_nan_and_names_the_spike(make_history):
    h = make_history(train_log={"loss": [2.9, 2.6, 2.4, 7.9, NAN, NAN]},
                     val={"cos_next": [0.4, 0.44, 0.46, 0.21, NAN, NAN]})
    (f,) = divergence.detect(h).findings
    assert f.severity == "critical" and f.epochs == (5,)
    assert "3.3x" in f.message  # 7.9 / 2.4


def test_inf_counts(make_history):
    h = make_history(train_log={"loss": [1.0, math.inf, 1.0]})
    assert divergence.detect(h).findings[0].epochs == (2,)


def test_silent_when_finite_and_ignores_never_logged_series(make_history):
    h = make_history(train_log={"loss": [1.0, 0.9, 0.8]}, val={"cos_next": [0.3, 0.4, 0.5], "raw_cos_next": [NAN] * 3})
    result = divergence.detect(h)
    assert not result.fired and result.ruled_out
