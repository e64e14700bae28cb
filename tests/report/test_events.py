"""Schedule events from the config, the trainer's log and the lr column."""

from lvmdiag.report.events import schedule_events


def test_warmup_end_is_the_first_epoch_without_the_teacher(make_history):
    h = make_history(val={"cos_next": [0.1] * 10}, config={"warmup_epochs": 2, "epochs": 10, "w_teacher": 0.2})
    (e,) = schedule_events(h)
    assert (e.name, e.epoch, e.source) == ("warmup_end", 3, "config")


def test_logged_events_win_and_outcomes_are_not_schedule_events(make_history):
    h = make_history(val={"cos_next": [0.1] * 5}, config={"warmup_epochs": 2},
                     events={3: ("warmup_end",), 4: ("collapse",)})
    (e,) = schedule_events(h)
    assert (e.epoch, e.source) == (3, "log")


def test_lr_changes(make_history):
    h = make_history(train_log={"lr": [1e-3, 1e-3, 1e-4, 1e-4]})
    (e,) = schedule_events(h)
    assert (e.name, e.epoch) == ("lr_change", 3)


def test_no_events(make_history):
    assert schedule_events(make_history(train_log={"lr": [1e-3] * 3})) == ()


def test_warmup_beyond_planned_epochs_is_not_an_event(make_history):
    assert schedule_events(make_history(val={"cos_next": [0.1] * 3}, config={"warmup_epochs": 5, "epochs": 5})) == ()


def test_a_history_numbered_from_zero_gets_one_warmup_end(tmp_path):
    """Epochs 0..4, warmup_epochs = 2: epochs 0 and 1 are the warmup, so the teacher is off from epoch 2. The
    config used to place the end at epoch 3 (numbering from 1) beside the loss term's drop at epoch 2: two
    events for one switch."""
    import json

    from lvmdiag.report.history import read_run_history

    (tmp_path / "config.json").write_text(json.dumps({"warmup_epochs": 2, "epochs": 5, "w_teacher": 0.2}))
    rows = [{"epoch": e, "train_loss": {"loss_teacher": 0.3 if e < 2 else 0.0, "loss": 1.0},
             "eval": {"val": {"cos_next": 0.1}}} for e in range(5)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ends = [e for e in schedule_events(read_run_history(tmp_path)) if e.name == "warmup_end"]
    assert [e.epoch for e in ends] == [2]


def test_a_zero_based_warmup_as_long_as_the_run_is_not_an_event(tmp_path):
    import json

    from lvmdiag.report.history import read_run_history

    (tmp_path / "config.json").write_text(json.dumps({"warmup_epochs": 5, "epochs": 5}))
    (tmp_path / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": e, "eval": {"val": {"cos_next": 0.1}}}) + "\n" for e in range(5)))
    assert schedule_events(read_run_history(tmp_path)) == ()
