"""Divergence to NaN/Inf."""

import math

import numpy as np

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


def test_next_step_lowers_the_runs_own_learning_rate(make_history):
    h = make_history(train_log={"loss": [1.0, NAN]}, config={"lr": 0.003})
    (f,) = divergence.detect(h).findings
    assert f.next_steps[0].endswith(f"--lr {0.003 / 10:g}")
    h = make_history(train_log={"loss": [1.0, NAN], "lr": [0.002, 0.002]})
    assert divergence.detect(h).findings[0].next_steps[0].endswith(f"--lr {0.002 / 10:g}")
    no_lr = divergence.detect(make_history(train_log={"loss": [1.0, NAN]})).findings[0].next_steps[0]
    assert "--lr" not in no_lr and "LOWER_LR" not in no_lr


def test_series_logged_as_nan_from_the_start_diverged_but_never_logged_ones_are_ignored(tmp_path):
    from lvmdiag.report.history import read_run_history

    (tmp_path / "h.csv").write_text("epoch,loss,val_cos_next,val_cos_prev\n1,nan,0.3,\n2,nan,0.35,\n")
    h = read_run_history(tmp_path)
    assert h.never_finite == ("train_log.loss",)  # val_cos_prev is empty: never logged, not NaN-logged
    (f,) = divergence.detect(h).findings
    assert f.epochs == (1,) and "train loss" in f.message and "cos_prev" not in f.message
    assert any("'loss' is NaN/Inf in every logged epoch" in n for n in h.notes)


def test_an_epoch_that_did_not_log_a_series_is_not_a_divergence_but_a_logged_nan_is(tmp_path):
    """Validation every other epoch (Lightning's check_val_every_n_epoch=2) leaves gaps, read as NaN in the
    arrays: not a divergence (it was reported as "4 series became NaN/Inf"). A value logged as NaN still is."""
    from lvmdiag.report.history import read_run_history

    (tmp_path / "h.csv").write_text("epoch,loss,val_cos_next,val_loss\n1,2.0,,\n2,1.8,0.30,1.5\n3,1.7,,\n"
                                    "4,1.6,0.35,1.4\n5,1.5,,\n")
    h = read_run_history(tmp_path)
    assert np.isnan(h.eval["val"]["cos_next"][[0, 2, 4]]).all()
    result = divergence.detect(h)
    assert not result.fired and result.ruled_out
    (tmp_path / "h.csv").write_text("epoch,loss,val_cos_next\n1,2.0,\n2,1.8,0.30\n3,1.7,\n4,1.6,nan\n")
    (f,) = divergence.detect(read_run_history(tmp_path)).findings
    assert f.epochs == (4,) and "val cos_next" in f.message
