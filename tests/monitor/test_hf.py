"""The Hugging Face callback on a real ``transformers.Trainer`` (a plain torch module, CPU): the planted
warmup end (learning rate x50) is reported in the epoch it happens and stops training; healthy runs
raise no critical finding; ``lvmdiag report`` on the run's real ``trainer_state.json`` and TensorBoard
directory gives the monitor's findings; a state file cut off mid-write keeps its complete entries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # the Trainer needs it (declared in the hf extra)
pytest.importorskip("tensorboard")

from lvmdiag.monitor import window_metrics  # noqa: E402
from lvmdiag.report import build_run_report, read_run_history  # noqa: E402

from ._task import BATCH, JUMP, LR, WARMUP_EPOCHS, cli_findings, lr_factor, loss_fn, make_model, steps_per_epoch, windows  # noqa: E402

EPOCHS = 6


class Net(torch.nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        self.net = make_model(seed)

    def forward(self, contexts, labels=None):
        pred = self.net(contexts)
        return {"loss": loss_fn(pred, labels), "logits": pred}


class Windows(torch.utils.data.Dataset):
    def __init__(self, contexts, targets):
        self.c, self.t = torch.from_numpy(contexts), torch.from_numpy(targets)

    def __len__(self):
        return len(self.c)

    def __getitem__(self, i):
        return {"contexts": self.c[i], "labels": self.t[i]}


def fit(root: Path, *, jump: float, seed: int, tensorboard: bool, **arg_overrides):
    from transformers import Trainer, TrainingArguments

    from lvmdiag.monitor.hf import LvmdiagTrainerCallback

    trc, trt, vc, vt = windows(seed)
    warmup = WARMUP_EPOCHS * steps_per_epoch(len(trc))
    settings = dict(output_dir=str(root / "hf"), num_train_epochs=EPOCHS, per_device_train_batch_size=BATCH,
                    per_device_eval_batch_size=64, learning_rate=LR, warmup_steps=warmup, eval_strategy="epoch",
                    logging_strategy="epoch", save_strategy="no", report_to=["tensorboard"] if tensorboard else [],
                    use_cpu=True, disable_tqdm=True, seed=seed, dataloader_num_workers=0)
    args = TrainingArguments(**{**settings, **arg_overrides})
    model = Net(seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(warmup, jump))  # the planted schedule

    def metrics(pred):  # eval rows are not shuffled: row i of the predictions is window i of val
        return window_metrics(pred.predictions, vc, pred.label_ids)

    callback = LvmdiagTrainerCallback(root / "monitor", figures=False)
    trainer = Trainer(model=model, args=args, train_dataset=Windows(trc, trt), eval_dataset=Windows(vc, vt),
                      optimizers=(opt, sched), compute_metrics=metrics, callbacks=[callback])
    trainer.train()
    trainer.save_state()
    return callback, trainer


@pytest.fixture(scope="module")
def collapsed(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    callback, trainer = fit(root, jump=JUMP, seed=0, tensorboard=True)
    return root, callback, trainer


def _key(report):
    return sorted((f.detector, f.code, f.severity, f.epochs) for f in report.findings)


def test_collapse_is_reported_in_the_epoch_it_happens_and_stops_training(collapsed):
    root, callback, trainer = collapsed
    first_after = WARMUP_EPOCHS + 1
    assert callback.stopped_epoch == first_after and round(trainer.state.epoch) == first_after
    checks = {c.epoch: c for c in callback.checks}
    assert sorted(checks) == [1, 2, 3] and not checks[1].findings and not checks[2].findings
    check = checks[first_after]
    assert check.report_path == str(root / "monitor" / "REPORT.md") and check.should_stop
    collapse = [f for f in check.new if f.code == "collapse_at_event"]
    assert collapse and collapse[0].severity == "critical" and collapse[0].epochs == (WARMUP_EPOCHS, first_after)
    # the lr x50 and the warmup end are the same moment: both are events at epoch 3, and the finding names one
    assert collapse[0].title in {f"Collapse at epoch {first_after}, aligned with {e}" for e in ("warmup_end", "lr_change")}
    report = json.loads((root / "monitor" / "report.json").read_text())
    assert report["status"] == "failed" and report["n_epochs"] == first_after
    assert {(e["name"], e["epoch"]) for e in report["events"]} >= {("warmup_end", first_after), ("lr_change", first_after)}


def test_report_on_trainer_state_and_tensorboard_matches_the_monitor(collapsed):
    root, _, _ = collapsed
    reference = build_run_report(root / "monitor")
    ref = read_run_history(root / "monitor")
    tb_dirs = {p.parent for p in (root / "hf").rglob("events.out.tfevents.*")}
    assert len(tb_dirs) == 1
    for path, fmt in ((root / "hf", "hf-trainer-state"), (tb_dirs.pop(), "tensorboard")):
        report = build_run_report(path)
        assert report.source_format == fmt
        assert _key(report) == _key(reference), fmt
        cli, payload = cli_findings(path)  # `lvmdiag report PATH --json -` says the same
        assert cli == _key(reference) and payload["source_format"] == fmt
        assert {(e.name, e.epoch) for e in report.events} == {(e.name, e.epoch) for e in reference.events}, fmt
        history = read_run_history(path)
        np.testing.assert_array_equal(history.epochs, ref.epochs)
        np.testing.assert_array_equal(history.steps, ref.steps)
        for name in ("cos_next", "cos_prev", "margin", "cos_anchor", "loss"):
            np.testing.assert_allclose(history.eval["val"][name], ref.eval["val"][name], rtol=1e-6, err_msg=f"{fmt} {name}")
        for name in ("loss", "lr"):
            np.testing.assert_allclose(history.train_log[name], ref.train_log[name], rtol=1e-6, err_msg=f"{fmt} {name}")


def test_crashed_trainer_state_keeps_complete_entries(collapsed, tmp_path):
    root, _, _ = collapsed
    text = (root / "hf" / "trainer_state.json").read_text()  # as the Trainer wrote it
    # killed while writing the epoch-3 evaluation entry: epochs 1-2 are complete, epoch 3 has its training log only
    third_eval = [i for i in range(len(text)) if text.startswith('"eval_loss"', i)][2]
    (tmp_path / "trainer_state.json").write_text(text[:third_eval + 15])
    history = read_run_history(tmp_path / "trainer_state.json")
    assert history.source_format == "hf-trainer-state" and history.n_epochs == 2
    assert any("cut off" in n for n in history.notes) and any("epoch(s) 3 did not finish" in n for n in history.notes)
    full = read_run_history(root / "hf")
    np.testing.assert_allclose(history.eval["val"]["cos_next"], full.eval["val"]["cos_next"][:2])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_healthy_runs_raise_no_critical_finding(tmp_path, seed):
    callback, trainer = fit(tmp_path, jump=1.0, seed=seed, tensorboard=False)
    assert callback.stopped_epoch is None and round(trainer.state.epoch) == EPOCHS
    assert [c.epoch for c in callback.checks] == list(range(1, EPOCHS + 1))
    assert not any(c.critical for c in callback.checks), [f.title for c in callback.checks for f in c.findings]


def test_without_per_epoch_evaluation_each_epoch_is_logged_with_its_loss_and_last_evaluation(tmp_path):
    """eval_strategy="no": the Trainer logs an epoch's loss after on_epoch_end, and the monitor used to record
    empty epochs (then "healthy"). eval_strategy="steps" (two evaluations per epoch): the monitor kept the
    first, the trainer_state reader the last; both now keep the last."""
    from lvmdiag.report import read_run_history

    callback, trainer = fit(tmp_path / "no", jump=1.0, seed=0, tensorboard=False, eval_strategy="no")
    rows = [json.loads(line) for line in (tmp_path / "no" / "monitor" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    logged = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert [r["train_loss"]["loss"] for r in rows] == pytest.approx(logged)
    assert build_run_report(tmp_path / "no" / "monitor").status != "no-metrics"

    per_epoch = steps_per_epoch(len(windows(0)[0]))
    callback, trainer = fit(tmp_path / "steps", jump=1.0, seed=0, tensorboard=False, eval_strategy="steps",
                            eval_steps=max(1, per_epoch // 2))
    trainer.save_state()
    monitor = read_run_history(tmp_path / "steps" / "monitor")
    state = read_run_history(tmp_path / "steps" / "hf")
    np.testing.assert_allclose(monitor.eval["val"]["cos_next"], state.eval["val"]["cos_next"], rtol=1e-6)
    evals = [e for e in trainer.state.log_history if "eval_cos_next" in e]
    assert len(evals) > EPOCHS  # several evaluations per epoch, the last of each kept, and the reader says so
    assert any(f"{len(evals)} evaluations fall in" in n and "last evaluation" in n for n in state.notes)
