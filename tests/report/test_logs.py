"""The shared name mapping and the step-based schedule events (the readers themselves are tested on
real Lightning / transformers output in tests/monitor/)."""

import numpy as np
import pytest

from lvmdiag.report.events import schedule_events
from lvmdiag.report.history import RunHistory
from lvmdiag.report.logs.names import history_key, map_names


@pytest.mark.parametrize("name, key", [
    ("val_loss", "val.loss"), ("eval_loss", "val.loss"), ("eval/loss", "val.loss"), ("validation_loss", "val.loss"),
    ("val/cos_next", "val.cos_next"), ("eval_cos_next", "val.cos_next"), ("train/cos_next", "train.cos_next"),
    ("loss", "train_log.loss"), ("train_loss", "train_log.loss"), ("train/loss", "train_log.loss"),
    ("train/loss_teacher", "train_log.loss_teacher"), ("lr-Adam", "train_log.lr"), ("lr-AdamW/pg1", "train_log.lr"),
    ("learning_rate", "train_log.lr"), ("train/learning_rate", "train_log.lr"), ("grad_norm", "train_log.grad_norm"),
    ("test_cos_next", "test.cos_next"), ("epoch", None), ("train/epoch", None), ("eval_runtime", None),
    ("eval/samples_per_second", None), ("hp_metric", None), ("train/train_loss", None),
])
def test_name_table(name, key):
    assert history_key(name) == key


def test_lightning_step_twins_and_epoch_aggregates():
    names = ["train_loss_step", "train_loss_epoch", "val_loss", "lr-Adam", "lr-Adam/pg2", "epoch", "step"]
    assert map_names(names) == {"train_loss_epoch": "train_log.loss", "val_loss": "val.loss", "lr-Adam": "train_log.lr"}
    assert map_names(["train_loss_step"]) == {"train_loss_step": "train_log.loss"}  # no aggregate: its last step value


def _history(config, steps=None, train_log=None, n=6):
    return RunHistory(epochs=np.arange(1, n + 1), train_log=train_log or {}, eval={"val": {"cos_next": np.ones(n)}},
                      config=config, steps=None if steps is None else np.asarray(steps, float))


def test_warmup_steps_placed_with_the_step_axis():
    steps = [10, 20, 30, 40, 50, 60]
    # steps 1-20 are warmup with warmup_steps = 20, so epoch 3 (steps 21-30) is the first after it
    for config, epoch in (({"warmup_steps": 20}, 3), ({"warmup_steps": 19}, 2), ({"num_warmup_steps": 45}, 5),
                          ({"warmup_ratio": 0.25, "epochs": 6}, 2),  # ceil(0.25 x 10 steps x 6 epochs) = 15
                          ({"warmup_ratio": 0.1, "max_steps": 60}, 1),  # 6 steps
                          # transformers >= 5 writes the ratio into warmup_steps as a float below 1
                          ({"warmup_steps": 0.5, "max_steps": 60}, 4), ({"warmup_steps": 0.25, "epochs": 6}, 2)):
        found = [(e.name, e.epoch) for e in schedule_events(_history(config, steps)) if e.name == "warmup_end"]
        assert found == [("warmup_end", epoch)], config
    assert not schedule_events(_history({"warmup_steps": 20}))  # no step axis: cannot be placed, nothing invented
    assert not schedule_events(_history({"warmup_steps": 100}, steps))  # never reached


def test_a_loss_term_switched_off_is_a_warmup_end():
    teacher = np.array([0.4, 0.3, 0.0, 0.0, 0.0, 0.0])
    events = schedule_events(_history({}, train_log={"loss_teacher": teacher}))
    assert [(e.name, e.epoch, e.source) for e in events] == [("warmup_end", 3, "loss")]
    flickers = np.array([0.4, 0.0, 0.3, 0.0, 0.0, 0.0])
    assert not schedule_events(_history({}, train_log={"loss_teacher": flickers}))
    assert not schedule_events(_history({}, train_log={"loss_teacher": np.zeros(6)}))


@pytest.mark.parametrize("name, fmt", [("lightning_csv", "lightning-csv"), ("hf_trainer_state", "hf-trainer-state")])
def test_real_framework_fixtures_read_without_the_frameworks(name, fmt):
    """The bundled logs of real Lightning / transformers runs (fixtures/runs/make_framework_runs.py), read
    with no framework installed: 8 epochs, the step axis, both events at epoch 3, the collapse found there."""
    from lvmdiag.report import build_run_report, read_run_history

    from .conftest import RUNS

    history = read_run_history(RUNS / name)
    assert history.source_format == fmt and history.epochs.tolist() == list(range(1, 9)) and history.complete
    np.testing.assert_array_equal(history.steps, 11 * history.epochs)  # 11 optimiser steps per epoch
    assert history.config["warmup_steps"] == 22 and history.config["epochs"] == 8
    report = build_run_report(RUNS / name)
    assert {("lr_change", 3), ("warmup_end", 3)} <= {(e.name, e.epoch) for e in report.events}
    finding = report.finding("collapse_at_event")
    assert finding is not None and finding.severity == "critical" and finding.epochs == (2, 3)


def test_tensorboard_without_an_epoch_scalar_counts_evaluations(tmp_path):
    """A plain ``SummaryWriter`` loop (torch's writer, real event files) that logs no epoch: each step with
    an evaluation metric ends one epoch, and the report says so."""
    pytest.importorskip("tensorboard")
    SummaryWriter = pytest.importorskip("torch.utils.tensorboard").SummaryWriter
    from lvmdiag.report import read_run_history

    writer = SummaryWriter(str(tmp_path))
    for step in range(1, 31):
        writer.add_scalar("train/loss", 1.0 / step, step)
        if step % 10 == 0:
            writer.add_scalar("val/cos_next", 0.1 * step / 10, step)
    writer.close()
    history = read_run_history(tmp_path)
    assert history.source_format == "tensorboard" and history.epochs.tolist() == [1, 2, 3]
    np.testing.assert_allclose(history.eval["val"]["cos_next"], [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(history.train_log["loss"], [1 / 10, 1 / 20, 1 / 30], rtol=1e-6)  # the last in each epoch
    np.testing.assert_array_equal(history.steps, [10, 20, 30])
    assert any("no 'epoch' scalar" in n for n in history.notes)


def test_a_hugging_face_output_dir_with_only_tensorboard_runs_is_found(tmp_path):
    """The HF Trainer writes TensorBoard events to output_dir/runs/<date_host>/: giving output_dir finds them
    (it was "no run history found"), the newest run when there are several."""
    pytest.importorskip("tensorboard")
    SummaryWriter = pytest.importorskip("torch.utils.tensorboard").SummaryWriter
    import os

    from lvmdiag.report import read_run_history

    for i, name in enumerate(("Dec01_host", "Dec02_host")):
        writer = SummaryWriter(str(tmp_path / "runs" / name))
        for step in range(1, 21):
            writer.add_scalar("train/loss", (i + 1) / step, step)
            if step % 10 == 0:
                writer.add_scalar("eval/cos_next", 0.1 * (i + 1), step)
        writer.close()
        os.utime(tmp_path / "runs" / name, (1000 + i, 1000 + i))
    history = read_run_history(tmp_path)
    assert history.source_format == "tensorboard" and history.epochs.tolist() == [1, 2]
    np.testing.assert_allclose(history.eval["val"]["cos_next"], [0.2, 0.2], rtol=1e-6)  # the newer run
