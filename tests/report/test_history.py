"""Readers: every run format into one RunHistory; bad run directories give a one-line RunDirError."""

import json
import shutil

import numpy as np
import pytest

from lvmdiag.errors import RunDirError
from lvmdiag.report.history import detect_format, read_run_history

from .conftest import RUNS


def test_p7_history_list_form():
    h = read_run_history(RUNS / "p7_baseline")
    assert h.source_format == "p7-history" and h.n_epochs == 10 and h.complete
    assert h.eval["val"]["cos_next"][[1, 2, -1]].tolist() == [0.396, 0.241, 0.271]
    assert h.train_log["loss_rank"][[0, -1]].tolist() == [2.68, 2.04]
    assert np.all(h.train_log["anchor_lambda"] == 0.8)
    assert h.config["warmup_epochs"] == 2 and h.config["anchor_learnable"] is True


def test_crashed_log_keeps_finished_epochs_and_matches_the_json():
    log = read_run_history(RUNS / "p7_crashed")
    full = read_run_history(RUNS / "p7_baseline")
    assert log.source_format == "p7-log" and log.n_epochs == 4 and not log.complete
    assert any("epoch 5 did not finish" in n for n in log.notes)
    for name in ("cos_next", "cos_prev", "margin", "cos_anchor"):
        np.testing.assert_allclose(log.eval["val"][name], full.eval["val"][name][:4], atol=1e-4)
    for name in ("loss", "loss_rank", "loss_margin", "loss_teacher", "gate_weight_mean", "anchor_lambda"):
        np.testing.assert_allclose(log.train_log[name], full.train_log[name][:4], atol=1e-4)
    assert log.label("train_log.loss_margin") == "Train metrics: Margin"


def test_lvmdiag_run_with_events_and_baselines():
    h = read_run_history(RUNS / "lvmdiag_healthy")
    assert h.source_format == "lvmdiag-run" and h.n_epochs == 8
    assert h.logged_events == {3: ("warmup_end",)}
    assert set(h.eval) == {"train", "val"} and "raw_cos_anchor" in h.eval["val"]
    assert h.baselines["val"]["copy_last"]["cos_prev"] == 1.0


def test_older_object_and_list_forms():
    obj = read_run_history(RUNS / "legacy_overfit")
    assert obj.source_format == "history-object"
    assert obj.eval["train"]["cosine"][-1] == 0.78 and obj.eval["val"]["loss"][0] == 0.56
    assert obj.train_log["loss"][0] == 0.55  # train_loss is the training loop's loss
    lst = read_run_history(RUNS / "legacy_list")
    assert lst.source_format == "history-list" and lst.n_epochs == 6 and "time" in lst.train_log


def test_generic_csv_and_jsonl():
    csv = read_run_history(RUNS / "csv_diverged")
    assert csv.source_format == "csv" and np.isnan(csv.train_log["loss"][4])
    assert csv.eval["val"]["margin"][0] == pytest.approx(0.02)
    js = read_run_history(RUNS / "jsonl_chance")
    assert js.source_format == "jsonl" and "loss_rank" in js.train_log and "cos_next" in js.eval["val"]


def test_a_single_file_can_be_given(tmp_path):
    h = read_run_history(RUNS / "csv_diverged" / "history.csv")
    assert h.config["batch_size"] == 64


def test_forced_format(tmp_path):
    shutil.copytree(RUNS / "p7_crashed", tmp_path / "run")
    shutil.copy(RUNS / "p7_baseline" / "training_history.json", tmp_path / "run")
    assert read_run_history(tmp_path / "run").source_format == "p7-history"  # json preferred by auto
    assert read_run_history(tmp_path / "run", fmt="p7-log").n_epochs == 4
    with pytest.raises(RunDirError, match="--format csv"):
        read_run_history(tmp_path / "run", fmt="csv")


def test_truncated_last_jsonl_line_is_skipped(tmp_path):
    shutil.copytree(RUNS / "lvmdiag_healthy", tmp_path / "run")
    path = tmp_path / "run" / "metrics.jsonl"
    path.write_text(path.read_text() + '{"epoch": 9, "eval": {"val": {"cos_ne')
    h = read_run_history(tmp_path / "run")
    assert h.n_epochs == 8 and "cut off" in h.notes[0]


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "no run history found; looked for metrics.jsonl"),
    (lambda d: (d / "training_history.json").write_text("[{"), "not valid JSON"),
    (lambda d: (d / "training_history.json").write_text("[]"), "no finished epoch"),
    (lambda d: (d / "training_history.json").write_text('{"a": 1}'), "without a 'history' list"),
    (lambda d: (d / "metrics.jsonl").write_text('{"epoch": 1}\n[1]\n{"epoch": 3}\n'), "line 2"),
    (lambda d: (d / "train.log").write_text("Epoch 1/3\n  Batch 50/100: loss=1.0\n"), "no finished epoch"),
    (lambda d: ((d / "config.json").write_text("[1]"), (d / "history.json").write_text('[{"epoch": 1, "val_loss": 1}]')), "JSON object"),
])
def test_bad_run_dirs(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(RunDirError, match=message) as info:
        read_run_history(tmp_path)
    assert "\n" not in str(info.value)


def test_missing_dir():
    with pytest.raises(RunDirError, match="does not exist"):
        read_run_history("/nonexistent/run")


def test_detect_format_prefers_metrics_jsonl(tmp_path):
    shutil.copytree(RUNS / "lvmdiag_healthy", tmp_path / "run")
    (tmp_path / "run" / "history.json").write_text(json.dumps([{"epoch": 1, "val_loss": 1.0}]))
    assert detect_format(tmp_path / "run")[0] == "lvmdiag-run"


def test_log_with_logging_prefixes(tmp_path):
    lines = []
    for e, (nxt, prv) in enumerate([(0.30, 0.35), (0.32, 0.36)], 1):
        ts = f"2025-11-04 22:2{e}:16,123 INFO"
        lines += [f"{ts} Epoch {e}/3", f"{ts}   Batch 50/100: loss=1.0, rank=2.0, margin=0.1", f"{ts} Train metrics:",
                  f"{ts}   Loss: {1.0 - e / 10}", f"{ts}   Margin: 0.12", f"{ts} Val metrics:",
                  f"{ts}   cos(pred, next): {nxt}", f"{ts}   cos(pred, prev): {prv}", f"{ts}   Margin (Δ): {nxt - prv:.3f}"]
    (tmp_path / "nohup.out").write_text("\n".join(lines) + "\n")
    h = read_run_history(tmp_path)
    assert h.source_format == "p7-log" and h.n_epochs == 2 and h.planned_epochs == 3
    assert h.eval["val"]["cos_next"].tolist() == [0.30, 0.32]
    assert h.eval["val"]["margin"].tolist() == [-0.05, -0.04]
    assert h.train_log["loss"].tolist() == [0.9, 0.8] and h.label("train_log.loss_margin") == "Train metrics: Margin"


def test_real_lvmdiag_train_output():
    """fixtures/runs/lvmdiag_trained is the unedited metrics.jsonl of an actual `lvmdiag train` run."""
    h = read_run_history(RUNS / "lvmdiag_trained")
    assert h.source_format == "lvmdiag-run" and h.n_epochs == 4 and h.complete
    assert {"cos_next", "raw_cos_anchor", "n_candidates"} <= set(h.eval["val"])
    assert "teacher_active" not in h.train_log  # booleans are not series
    assert h.logged_events == {2: ("warmup_end",)}
    assert "copy_last" in h.baselines["val"]
