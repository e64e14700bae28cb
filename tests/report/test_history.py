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


def _copy_run(tmp_path, name):
    run = tmp_path / "run"
    shutil.copytree(RUNS / name, run)
    return run


@pytest.mark.parametrize("files, message", [
    ({"metrics.jsonl": '{"epoch": "abc"}\n'}, "line 1: epoch 'abc' is not a whole number"),
    ({"metrics.jsonl": '{"epoch": 1.5}\n'}, "epoch 1.5 is not a whole number"),
    ({"metrics.jsonl": '{"epoch": 1e30}\n'}, "epoch 1e\\+30 is larger than 1,000,000,000"),
    ({"metrics.jsonl": '{"epoch": 1, "train_loss": [1, 2]}\n'}, "'train_loss' must be a JSON object"),
    ({"metrics.jsonl": '{"epoch": 1, "eval": {"val": 3}}\n'}, "'eval.val' must be a JSON object"),
    ({"metrics.jsonl": '{"epoch": 1, "events": 5}\n'}, "'events' must be a list"),
    ({"metrics.jsonl": b"\xff\xfe\x00garbage"}, "not UTF-8 text"),
    ({"history.csv": "epoch,loss\nabc,1\n"}, "epoch 'abc' is not a whole number"),
    ({"history.csv": "epoch,loss\nnan,1\n"}, "epoch 'nan' is not a whole number"),
    ({"history.csv": "epoch,loss\n1,0.5,7\n"}, "row 1 has more cells than the header"),
    ({"history.csv": b"epoch,loss\n\xff,1\n"}, "not UTF-8 text"),
    ({"history.json": '[{"epoch": null, "loss": 1}]'}, "epoch None is not a whole number"),
    ({"training_history.json": '[{"epoch": 1, "train": {"loss": 1}, "val": [1]}]'}, "'val' must be a JSON object"),
])
def test_malformed_history_files_are_one_line_errors(tmp_path, files, message):
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(RunDirError, match=message) as info:
        read_run_history(tmp_path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("baselines, message", [
    ("[1]", "must be a JSON object"),
    ('{"val": 5}', "'val' must map predictor names"),
    ('{"val": {"copy_last": 5}}', "'val.copy_last' must be an object"),
    ('{"val": {"copy_last": {"cos_next": "x", "cos_prev": 1.0}}}', "'val.copy_last.cos_next' is 'x', not a number"),
])
def test_malformed_baselines_json_is_an_error_not_a_silent_skip(tmp_path, baselines, message):
    run = _copy_run(tmp_path, "lvmdiag_healthy")
    (run / "baselines.json").write_text(baselines)
    with pytest.raises(RunDirError, match=message):
        read_run_history(run)


@pytest.mark.parametrize("key, value, message", [
    ("epochs", "ten", "'epochs' = 'ten' is not a whole number"),
    ("batch_size", 0, "'batch_size' = 0 is outside"),
    ("warmup_epochs", -1, "'warmup_epochs' = -1 is outside"),
    ("anchor_lambda", 5, "'anchor_lambda' = 5 is outside"),
    ("margin", 1e308, "'margin' = 1e\\+308 is outside"),
    ("w_rank", -1, "'w_rank' = -1 is outside"),
    ("w_margin", True, "'w_margin' = True is not a number"),
    ("anchor_learnable", "maybe", "'anchor_learnable' = 'maybe' is not true or false"),
])
def test_config_values_the_detectors_read_are_checked(tmp_path, key, value, message):
    run = _copy_run(tmp_path, "p7_baseline")
    config = json.loads((run / "config.json").read_text())
    config[key] = value
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunDirError, match=message):
        read_run_history(run)
    config[key] = None  # null means "not set", not an error
    (run / "config.json").write_text(json.dumps(config))
    assert read_run_history(run).n_epochs == 10


def test_non_numeric_cells_and_repeated_epochs_are_noted_not_silent(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss,val_cos_next\n1,abc,0.5\n2,0.4,\n2,0.3,0.6\n")
    h = read_run_history(tmp_path)
    assert np.isnan(h.train_log["loss"][0]) and h.train_log["loss"][1] == 0.3  # the last entry of epoch 2 wins
    assert any("'loss' is not a number at epoch(s) 1 (e.g. 'abc')" in n for n in h.notes)
    assert any("epoch(s) 2 logged more than once" in n for n in h.notes)
    assert not any("val_cos_next" in n for n in h.notes)  # an empty cell is missing by design, not an error


def test_csv_from_a_spreadsheet_byte_order_mark_and_padded_epoch_column(tmp_path):
    (tmp_path / "h.csv").write_bytes("\ufeffEpoch , loss,val_cos_next\n3,0.5,0.4\n5,0.4,0.45\n".encode("utf-8"))
    h = read_run_history(tmp_path)
    assert h.epochs.tolist() == [3, 5]  # the epoch column is used, not the row number
    assert set(h.train_log) == {"loss"} and h.eval["val"]["cos_next"].tolist() == [0.4, 0.45]


def test_other_tables_in_a_run_dir_are_not_taken_for_the_history(tmp_path):
    shutil.copytree(RUNS / "p7_crashed", tmp_path / "run")
    # a per-sample table sorts before nothing else and has no epoch column: one "epoch" per row if misread
    (tmp_path / "run" / "a_predictions.csv").write_text("sample,score\n" + "".join(f"{i},0.5\n" for i in range(50)))
    h = read_run_history(tmp_path / "run")
    assert h.source_format == "p7-log" and h.n_epochs == 4
    (tmp_path / "run" / "b_history.csv").write_text("epoch,loss\n1,0.5\n2,0.4\n")
    assert read_run_history(tmp_path / "run").source_format == "csv"  # a real per-epoch table still wins
    # given explicitly, a table without an epoch column is read with one epoch per row, as before
    assert read_run_history(tmp_path / "run" / "a_predictions.csv").n_epochs == 50


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


def test_text_columns_are_noted_once_not_per_epoch(tmp_path):
    rows = "".join(f"{e},2025-11-04 10:{e:02d},{0.5 if e % 2 else 'x'}\n" for e in range(1, 21))
    (tmp_path / "h.csv").write_text("epoch,timestamp,loss\n" + rows)
    notes = read_run_history(tmp_path).notes
    assert "'timestamp' holds text, not numbers (e.g. '2025-11-04 10:01'); it is not used." in notes
    (loss,) = [n for n in notes if n.startswith("'loss'")]
    assert "epoch(s) 2, 4, 6, 8, 10, 12, 14, 16, … (10 epochs)" in loss


def test_a_restarted_run_appended_to_the_same_log_is_read_from_the_later_run(tmp_path):
    """`nohup` appends: a crashed run (epochs 1-4 finished, 5 cut) then a fresh one (epochs 1-2). The epochs
    used to mix (later 1-2, earlier 3-4) without a word; now the later run's epochs replace the earlier ones
    from where the numbering goes back, and a note says so."""
    log = (RUNS / "p7_crashed" / "train.log").read_text()
    second = log[: log.index("Epoch 3/10")].replace("cos(pred, next): 0.3960", "cos(pred, next): 0.1111")
    (tmp_path / "config.json").write_text((RUNS / "p7_crashed" / "config.json").read_text())
    (tmp_path / "train.log").write_text(log + "\n" + second)
    h = read_run_history(tmp_path)
    assert h.epochs.tolist() == [1, 2]
    assert h.eval["val"]["cos_next"].tolist() == [0.372, 0.1111]
    assert any("numbering goes back from 5 to 1" in n for n in h.notes)  # epoch 5 was cut mid-way
    resumed = log + "\n" + log[log.index("Epoch 3/10"):]  # resumed from epoch 3: epochs 1-2 are kept
    (tmp_path / "train.log").write_text(resumed)
    assert read_run_history(tmp_path).epochs.tolist() == [1, 2, 3, 4]


def test_lists_and_nested_objects_are_noted_not_dropped(tmp_path):
    """A list or a nested object where a number belongs used to vanish without a word."""
    rows = [{"epoch": e, "train": {"loss": 1.0, "parts": [1, 2]}, "val": {"cos_next": 0.1, "per_pos": {"0": 0.2}}}
            for e in (1, 2)]
    (tmp_path / "training_history.json").write_text(json.dumps(rows))
    h = read_run_history(tmp_path)
    assert "'train.parts' holds lists or objects, not numbers (e.g. [1, 2]); it is not used." in h.notes
    assert any(n.startswith("'val.per_pos' holds lists or objects") for n in h.notes)
    assert list(h.eval["val"]["cos_next"]) == [0.1, 0.1]
    flat = [{"epoch": 1, "loss": 0.5, "grad_norms": [0.1, 0.2]}]
    (tmp_path / "training_history.json").write_text(json.dumps(flat))
    assert any(n.startswith("'grad_norms' holds lists or objects") for n in read_run_history(tmp_path).notes)


def test_a_list_in_place_of_the_train_metrics_is_a_one_line_error(tmp_path):
    """`"train": [1, 2]` beside a "val" object: the history is the nested upstream form, so the list is an error
    (it used to switch the reader to the flat form, which dropped both without a word)."""
    (tmp_path / "training_history.json").write_text(json.dumps([{"epoch": 1, "train": [1, 2], "val": {"cos_next": 0.1}}]))
    with pytest.raises(RunDirError, match="'train' must be a JSON object"):
        read_run_history(tmp_path)
