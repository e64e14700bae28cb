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
