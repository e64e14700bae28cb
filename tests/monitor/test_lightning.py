"""The Lightning callback on a real ``lightning.Trainer`` (tiny MLP, CPU): a planted warmup end that
multiplies the learning rate by 50 is caught in the epoch it happens, with the report written then and
training stopped; healthy runs raise no critical finding; ``lvmdiag report`` on the run's real
CSVLogger and TensorBoard output gives the findings the monitor's metrics.jsonl gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pl = pytest.importorskip("lightning.pytorch")
torch = pytest.importorskip("torch")
pytest.importorskip("tensorboard")

from lvmdiag.monitor import WindowMetrics  # noqa: E402
from lvmdiag.report import build_run_report, read_run_history  # noqa: E402

from ._task import BATCH, JUMP, LR, WARMUP_EPOCHS, cli_findings, lr_factor, loss_fn, make_model, steps_per_epoch, windows  # noqa: E402

EPOCHS = 6


class Ranker(pl.LightningModule):
    def __init__(self, lr: float, jump: float, warmup_steps: int, epochs: int, seed: int) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = make_model(seed)
        self.val_metrics = WindowMetrics()

    def training_step(self, batch, _):
        ctx, tgt = batch
        loss = loss_fn(self.net(ctx), tgt)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, _):
        ctx, tgt = batch
        pred = self.net(ctx)
        self.log("val_loss", loss_fn(pred, tgt), on_epoch=True)
        self.val_metrics.update(pred, ctx, tgt)

    def on_validation_epoch_end(self):
        for name, value in self.val_metrics.compute().items():
            self.log(f"val/{name}", value)
        self.val_metrics.reset()

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(self.hparams.warmup_steps, self.hparams.jump))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def fit(root: Path, *, jump: float, seed: int, loggers: bool):
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from lvmdiag.monitor.lightning import LvmdiagCallback

    trc, trt, vc, vt = windows(seed)
    g = torch.Generator().manual_seed(seed)
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(trc), torch.from_numpy(trt)),
                                        batch_size=BATCH, shuffle=True, generator=g)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(vc), torch.from_numpy(vt)),
                                      batch_size=64)
    warmup = WARMUP_EPOCHS * steps_per_epoch(len(trc))
    callback = LvmdiagCallback(root / "monitor", figures=False)
    logger = [CSVLogger(root, name="csv"), TensorBoardLogger(root, name="tb", default_hp_metric=False)] if loggers else False
    trainer = pl.Trainer(max_epochs=EPOCHS, accelerator="cpu", logger=logger, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1,
                         callbacks=[callback, *([LearningRateMonitor(logging_interval="epoch")] if loggers else [])])
    trainer.fit(Ranker(LR, jump, warmup, EPOCHS, seed), train, val)
    return callback, trainer


@pytest.fixture(scope="module")
def collapsed(tmp_path_factory):
    root = tmp_path_factory.mktemp("lightning")
    callback, trainer = fit(root, jump=JUMP, seed=0, loggers=True)
    return root, callback, trainer


def _key(report):
    return sorted((f.detector, f.code, f.severity, f.epochs) for f in report.findings)


def test_collapse_is_reported_in_the_epoch_it_happens_and_stops_training(collapsed):
    root, callback, trainer = collapsed
    first_after = WARMUP_EPOCHS + 1
    assert callback.stopped_epoch == first_after and trainer.current_epoch == first_after  # 3 of 6 epochs trained
    checks = {c.epoch: c for c in callback.checks}
    assert sorted(checks) == [1, 2, 3] and not checks[1].findings and not checks[2].findings
    check = checks[first_after]
    assert check.report_path == str(root / "monitor" / "REPORT.md") and check.should_stop
    collapse = [f for f in check.new if f.code == "collapse_at_event"]
    assert collapse and collapse[0].severity == "critical" and collapse[0].epochs == (WARMUP_EPOCHS, first_after)
    assert any(e.label == "schedule event" and f"at epoch {first_after}" in str(e.value) for e in collapse[0].evidence)
    report = json.loads((root / "monitor" / "report.json").read_text())
    assert report["status"] == "failed" and report["n_epochs"] == first_after
    assert {(e["name"], e["epoch"]) for e in report["events"]} >= {("warmup_end", first_after), ("lr_change", first_after)}
    lines = (root / "monitor" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]
    assert json.loads(lines[2])["events"] == ["lr_change", "warmup_end"]


def test_report_on_lightning_csv_and_tensorboard_matches_the_monitor(collapsed):
    root, _, _ = collapsed
    reference = build_run_report(root / "monitor")
    csv_dir = root / "csv"  # the logger root: the reader finds version_0/metrics.csv
    tb_dir = root / "tb"
    for path, fmt in ((csv_dir, "lightning-csv"), (tb_dir, "tensorboard")):
        report = build_run_report(path)
        assert report.source_format == fmt
        assert _key(report) == _key(reference), fmt
        cli, payload = cli_findings(path)  # `lvmdiag report PATH --json -` says the same
        assert cli == _key(reference) and payload["source_format"] == fmt
        assert {(e.name, e.epoch) for e in report.events} == {(e.name, e.epoch) for e in reference.events}, fmt
        history, ref = read_run_history(path), read_run_history(root / "monitor")
        np.testing.assert_array_equal(history.epochs, ref.epochs)
        np.testing.assert_array_equal(history.steps, ref.steps)
        for name in ("cos_next", "cos_prev", "margin", "cos_anchor", "loss"):
            np.testing.assert_allclose(history.eval["val"][name], ref.eval["val"][name], rtol=1e-6, err_msg=f"{fmt} {name}")
        np.testing.assert_allclose(history.train_log["loss"], ref.train_log["loss"], rtol=1e-6)
        np.testing.assert_allclose(history.train_log["lr"], ref.train_log["lr"], rtol=1e-6)


def test_crashed_lightning_logs_keep_finished_epochs(collapsed, tmp_path):
    import shutil

    root, _, _ = collapsed
    run = tmp_path / "csv"
    shutil.copytree(root / "csv" / "version_0", run)
    text = (run / "metrics.csv").read_text()
    (run / "metrics.csv").write_text(text[:-7])  # killed while writing the last row
    history = read_run_history(run)
    assert history.source_format == "lightning-csv" and history.n_epochs == 3
    assert any("ends mid-row" in n for n in history.notes)
    # killed during epoch 3: its learning-rate row (logged at its first step) is there, nothing else
    header, *body = text.splitlines()
    (run / "metrics.csv").write_text("\n".join([header, *(r for r in body if r.split(",")[0] != "2")]) + "\n")
    history = read_run_history(run)
    assert history.n_epochs == 2 and any("epoch(s) 3 did not finish" in n for n in history.notes), history.notes
    np.testing.assert_allclose(history.train_log["lr"], [LR, LR])  # the cut epoch's lr is not read into epoch 2

    tb = tmp_path / "tb"
    shutil.copytree(root / "tb" / "version_0", tb)
    event = next(tb.glob("events.out.tfevents.*"))
    data = event.read_bytes()
    event.write_bytes(data[:-30])  # the last record cut in half
    history = read_run_history(tb)
    assert 2 <= history.n_epochs <= 3 and any("cut off mid-record" in n for n in history.notes), history.notes
    full = read_run_history(root / "tb" / "version_0")
    np.testing.assert_allclose(history.eval["val"]["cos_next"], full.eval["val"]["cos_next"][:history.n_epochs])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_healthy_runs_raise_no_critical_finding(tmp_path, seed):
    callback, trainer = fit(tmp_path, jump=1.0, seed=seed, loggers=False)
    assert callback.stopped_epoch is None and trainer.current_epoch == EPOCHS
    assert [c.epoch for c in callback.checks] == list(range(1, EPOCHS + 1))
    assert not any(c.critical for c in callback.checks), [f.title for c in callback.checks for f in c.findings]
    assert json.loads((tmp_path / "monitor" / "report.json").read_text())["status"] != "failed"


def test_epochs_without_validation_log_no_stale_validation_values(tmp_path):
    """check_val_every_n_epoch=2: Lightning's callback_metrics keep the last validation's values through the
    next epoch, which the callback used to log as that epoch's (stale numbers). Odd epochs now have none,
    and the report reads the gaps as not logged, not as a divergence."""
    from lightning.pytorch.callbacks import Callback

    from lvmdiag.monitor.lightning import LvmdiagCallback

    trc, trt, vc, vt = windows(0)
    data = [torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(c), torch.from_numpy(t)),
                                        batch_size=BATCH) for c, t in ((trc, trt), (vc, vt))]
    seen = {}

    class Spy(Callback):  # what Lightning itself computed in each validation epoch
        def on_validation_epoch_end(self, trainer, pl_module):
            if not trainer.sanity_checking:
                seen[trainer.current_epoch + 1] = float(trainer.callback_metrics["val_loss"])

    callback = LvmdiagCallback(tmp_path / "monitor", figures=False, stop_on_critical=False)
    trainer = pl.Trainer(max_epochs=4, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, check_val_every_n_epoch=2,
                         callbacks=[callback, Spy()])
    trainer.fit(Ranker(LR, 1.0, 10, 4, 0), *data)
    rows = [json.loads(line) for line in (tmp_path / "monitor" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4] and sorted(seen) == [2, 4]
    for r in rows:
        if r["epoch"] in seen:
            assert r["eval"]["val"]["loss"] == pytest.approx(seen[r["epoch"]], rel=1e-6)
            assert "cos_next" in r["eval"]["val"]
        else:
            assert r["eval"] == {}, r  # no validation ran: nothing, not the last validation's numbers
    history = read_run_history(tmp_path / "monitor")
    assert np.isnan(history.eval["val"]["loss"][[0, 2]]).all() and np.isfinite(history.eval["val"]["loss"][[1, 3]]).all()
    np.testing.assert_allclose(history.eval["val"]["loss"][[1, 3]], [seen[2], seen[4]], rtol=1e-5)
    assert "divergence" not in {f.detector for f in build_run_report(tmp_path / "monitor").findings}


def test_under_ddp_only_process_zero_writes_one_line_per_epoch(tmp_path):
    """Two DDP processes on CPU (a real spawned process group): metrics.jsonl has one line per epoch, not
    one per process (they used to interleave, duplicate epochs and lose one to a race)."""
    from lvmdiag.monitor.lightning import LvmdiagCallback

    trc, trt, vc, vt = windows(0)
    data = [torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(c), torch.from_numpy(t)),
                                        batch_size=BATCH) for c, t in ((trc, trt), (vc, vt))]
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False,
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         callbacks=[LvmdiagCallback(tmp_path / "monitor", figures=False, stop_on_critical=False)])
    trainer.fit(Ranker(LR, 1.0, 10, 3, 0), *data)
    rows = [json.loads(line) for line in (tmp_path / "monitor" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all("cos_next" in r["eval"]["val"] for r in rows)
