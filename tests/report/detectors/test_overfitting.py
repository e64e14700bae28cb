"""Overfitting: the train-eval vs val gap grows while val worsens."""

from lvmdiag.report.detectors import overfitting


def test_fires_on_planted_overfitting(make_history):
    h = make_history(val={"cos_next": [0.44, 0.50, 0.52, 0.51, 0.49, 0.47, 0.45]},
                     train_eval={"cos_next": [0.45, 0.52, 0.58, 0.63, 0.68, 0.72, 0.75]})
    (f,) = overfitting.detect(h).findings
    assert f.epochs == (3, 7) and f.cause == "overfitting"
    assert "0.060" in f.message and "0.300" in f.message  # gap 0.58-0.52 -> 0.75-0.45


def test_loss_metric_is_lower_is_better(make_history):
    h = make_history(val={"loss": [0.6, 0.5, 0.45, 0.5, 0.56]}, train_eval={"loss": [0.6, 0.48, 0.4, 0.32, 0.25]})
    assert overfitting.detect(h).fired


def test_silent_with_constant_gap(make_history):
    h = make_history(val={"cos_next": [0.4, 0.5, 0.55, 0.58]}, train_eval={"cos_next": [0.42, 0.52, 0.57, 0.60]})
    result = overfitting.detect(h)
    assert not result.fired and result.ruled_out


def test_silent_when_val_dips_less_than_5_percent(make_history):
    h = make_history(val={"cos_next": [0.4, 0.5, 0.49]}, train_eval={"cos_next": [0.4, 0.55, 0.7]})
    assert not overfitting.detect(h).fired


def test_skipped_without_train_evaluation(make_history):
    assert overfitting.detect(make_history(val={"cos_next": [0.4, 0.5, 0.4]})).skipped


def test_the_ruled_out_note_names_the_conditions_that_failed_with_their_numbers(make_history):
    """A growing gap with a flat val cosine was ruled out "because the gap did not grow while val got worse",
    which its own evidence contradicted; the note now names the failed condition and its number."""
    h = make_history(val={"cos_next": [0.40, 0.50, 0.495, 0.49]}, train_eval={"cos_next": [0.40, 0.59, 0.68, 0.73]})
    (r,) = overfitting.detect(h).ruled_out
    assert "on cos_next: val cos_next worsened by 2.0% from its best (the rule needs >= 5%)" in r.reason
    assert "gap" not in r.reason.split("needs >= 5%")[1]  # the gap did grow: not named as failed


def test_a_val_loss_that_overfits_fires_even_when_the_cosine_does_not(make_history):
    """Every metric logged for both splits is checked: val loss rising with train loss falling and a growing
    gap fires although cos_next is flat (the loss was never examined when a cosine was logged)."""
    h = make_history(val={"cos_next": [0.40, 0.45, 0.45, 0.45, 0.45], "loss": [0.6, 0.5, 0.45, 0.5, 0.56]},
                     train_eval={"cos_next": [0.40, 0.46, 0.46, 0.46, 0.46], "loss": [0.6, 0.48, 0.4, 0.32, 0.25]})
    (f,) = overfitting.detect(h).findings
    assert "val loss peaked at epoch 3" in f.message
