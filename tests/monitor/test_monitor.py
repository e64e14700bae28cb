"""RunMonitor in a plain loop (no framework): the metrics.jsonl contract, the report written the moment a
detector fires (not before), divergence with NaN kept visible, baselines once, refusals."""

import json

import numpy as np
import pytest

from lvmdiag.errors import InputError
from lvmdiag.monitor import RunMonitor, epoch_record
from lvmdiag.report import build_run_report, read_run_history

# a run that learns, then collapses at the end of a 2-epoch warmup (the P7 shape)
VAL = [(0.30, 0.28, 0.50), (0.36, 0.33, 0.55), (0.20, 0.19, 0.33), (0.21, 0.20, 0.34), (0.22, 0.21, 0.35)]


def _metrics(i, values=VAL):
    nxt, prev, anchor = values[i]
    return {"train_loss": 1.0 - 0.1 * i, "lr": 1e-3, "val/cos_next": nxt, "val/cos_prev": prev,
            "val/margin": nxt - prev, "val/cos_anchor": anchor}


def test_record_follows_the_run_directory_contract():
    rec = epoch_record(3, {"train_loss": np.float32(0.5), "loss_rank": 0.4, "lr": 1e-3, "eval_loss": 0.7,
                           "val/cos_next": 0.3, "train/cos_next": 0.35, "grad_norm": float("nan"),
                           "epoch": 2, "eval_runtime": 0.1}, ["warmup_end"], step=30, time_s=1.5)
    assert rec == {"epoch": 3, "lr": 1e-3, "time_s": 1.5, "step": 30, "events": ["warmup_end"],
                   "train_loss": {"loss": 0.5, "loss_rank": 0.4, "grad_norm": "NaN"},
                   "eval": {"val": {"loss": 0.7, "cos_next": 0.3}, "train": {"cos_next": 0.35}}}
    nested = epoch_record(1, {"train_loss": {"loss": 1.0}, "eval": {"val": {"cos_next": 0.2}}, "lr": 0.1})
    assert nested["train_loss"] == {"loss": 1.0} and nested["eval"] == {"val": {"cos_next": 0.2}} and nested["lr"] == 0.1


def test_report_is_written_in_the_collapse_epoch_and_names_the_event(tmp_path):
    run = tmp_path / "run"
    monitor = RunMonitor(run, config={"warmup_epochs": 2, "epochs": 5, "lr": 1e-3}, figures=False)
    for i in range(2):
        check = monitor.log_epoch(i + 1, _metrics(i))
        assert not check.findings and check.report_path is None and not (run / "REPORT.md").exists()
    check = monitor.log_epoch(3, _metrics(2))
    assert check.should_stop and check.report_path == str(run / "REPORT.md")
    assert [f.code for f in check.new] == ["collapse_at_event"] and check.new[0].epochs == (2, 3)
    assert "warmup_end" in check.new[0].title
    report = json.loads((run / "report.json").read_text())
    assert report["n_epochs"] == 3 and report["status"] == "failed" and not report["complete"]
    # the same finding at the next epoch is not new: no rewrite
    later = monitor.log_epoch(4, _metrics(3))
    assert later.findings and not later.new and later.report_path is None
    final = monitor.close()
    assert final.n_epochs == 4 and final.finding("collapse_at_event") is not None
    assert detector_keys(build_run_report(run)) == detector_keys(final)


def detector_keys(report):
    return sorted((f.code, f.severity, f.epochs) for f in report.findings)


def test_same_numbers_without_a_drop_are_silent(tmp_path):
    steady = [(0.30, 0.28, 0.50), (0.36, 0.33, 0.55), (0.37, 0.34, 0.56), (0.38, 0.35, 0.57)]
    with RunMonitor(tmp_path / "run", config={"warmup_epochs": 2}, figures=False) as monitor:
        checks = [monitor.log_epoch(i + 1, _metrics(i, steady)) for i in range(4)]
    assert not any(c.findings for c in checks)
    assert json.loads((tmp_path / "run" / "report.json").read_text())["status"] == "healthy"  # written by close()


def test_nan_stays_visible_and_divergence_fires(tmp_path):
    monitor = RunMonitor(tmp_path / "run", figures=False)
    monitor.log_epoch(1, {"train_loss": 1.0, "val/cos_next": 0.3})
    monitor.log_epoch(2, {"train_loss": 5.0, "val/cos_next": 0.3})
    check = monitor.log_epoch(3, {"train_loss": float("nan"), "val/cos_next": float("nan")})
    assert [f.code for f in check.new if f.detector == "divergence"] == ["diverged"] and check.should_stop
    line = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1]
    assert json.loads(line)["train_loss"]["loss"] == "NaN"  # JSON has no NaN; the reader reads it back
    assert np.isnan(read_run_history(tmp_path / "run").train_log["loss"][-1])


def test_baselines_once_and_refusals(tmp_path):
    rng = np.random.default_rng(0)
    ctx = rng.normal(size=(50, 3, 8)).astype(np.float32)
    tgt = rng.normal(size=(50, 8)).astype(np.float32)
    RunMonitor(tmp_path / "run", data=(ctx, tgt), figures=False).log_epoch(1, {"val/cos_next": 0.2})
    baselines = json.loads((tmp_path / "run" / "baselines.json").read_text())
    assert baselines["val"]["copy_last"]["cos_prev"] == pytest.approx(1.0, abs=1e-6)
    assert set(baselines["val"]) == {"copy_last", "mean_context"}
    with pytest.raises(InputError, match="already exists"):
        RunMonitor(tmp_path / "run")
    resumed = RunMonitor(tmp_path / "run", resume=True, figures=False)
    with pytest.raises(InputError, match="epochs must increase"):
        resumed.log_epoch(1, {"val/cos_next": 0.2})
    resumed.log_epoch(2, {"val/cos_next": 0.21})
    assert read_run_history(tmp_path / "run").epochs.tolist() == [1, 2]
    with pytest.raises(InputError, match="data="):
        RunMonitor(tmp_path / "other", data=ctx)


def test_a_cut_off_last_line_keeps_the_finished_epochs(tmp_path):
    monitor = RunMonitor(tmp_path / "run", figures=False)
    for i in range(3):
        monitor.log_epoch(i + 1, _metrics(i))
    path = tmp_path / "run" / "metrics.jsonl"
    path.write_text(path.read_text() + '{"epoch": 4, "train_loss": {"loss": 0.')  # a writer without atomic append
    history = read_run_history(tmp_path / "run")
    assert history.epochs.tolist() == [1, 2, 3] and any("cut off" in n for n in history.notes)


def test_adapter_config_drops_hyperparameters_the_report_would_misread():
    from lvmdiag.errors import LvmdiagWarning
    from lvmdiag.monitor._adapter import EventTracker, scalar_config

    with pytest.warns(LvmdiagWarning, match="margin"):
        config = scalar_config({"lr": 1e-3, "margin": 5.0, "model": object(), "name": "x"})
    assert config == {"lr": 1e-3, "name": "x"}
    tracker = EventTracker(warmup_steps=22)  # the rule of the step-event reader: first epoch whose last step is > 22
    assert [tracker.events(lr, step) for lr, step in ((1e-3, 11), (1e-3, 22), (5e-2, 33), (5e-2, 44))] == [
        [], [], ["lr_change", "warmup_end"], []]


def test_baselines_from_a_sequence_file(tmp_path):
    """data= a file: read with the project's reader (an article store, windows of k), scored by the evaluator;
    copy_last's cos_next checked against a direct per-row numpy computation."""
    from pathlib import Path

    from lvmdiag.data.readers import load_sequences

    store = Path(__file__).resolve().parents[2] / "fixtures" / "python_docs" / "val_store.npz"
    RunMonitor(tmp_path / "run", data=store, k=5, figures=False)
    got = json.loads((tmp_path / "run" / "baselines.json").read_text())["val"]["copy_last"]
    seqs = load_sequences(store, k=5)
    c, t = np.asarray(seqs.contexts[:, -1], float), np.asarray(seqs.targets, float)
    direct = np.mean(np.sum(c * t, 1) / np.linalg.norm(c, axis=1) / np.linalg.norm(t, axis=1))
    assert got["cos_next"] == pytest.approx(direct, abs=1e-5) and got["n"] == len(t)
