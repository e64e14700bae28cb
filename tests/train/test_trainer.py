import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from lvmdiag.errors import InputError
from lvmdiag.train import rundir
from lvmdiag.train.trainer import train

from .conftest import rotation_task, tiny_config

REPO = Path(__file__).resolve().parents[2]


def _records(run_dir):
    return rundir.read_metrics(Path(run_dir))


def _strip_time(records):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in records]


def test_loss_falls_and_model_beats_copying_on_a_learnable_task(tmp_path):
    # t = R c_last: copying c_last is useless (cos ~ 0), a model that learns R is not.
    cfg = tiny_config(epochs=6, batch_size=64, lr=5e-3, anchor_lambda=0.95, warmup_epochs=0)
    result = train(cfg, rotation_task(1200, seed=0), rotation_task(300, seed=1), out_dir=tmp_path / "run",
                   write_report=False)
    recs = _records(tmp_path / "run")
    assert [r["epoch"] for r in recs] == list(range(1, 7))
    losses = [r["train_loss"]["loss"] for r in recs]
    assert losses[-1] < 0.5 * losses[0]
    val = recs[-1]["eval"]["val"]
    copy = result.baselines["val"]["copy_last"]
    assert val["cos_next"] > copy["cos_next"] + 0.3
    assert val["recall_at_1"] > 5 * val["recall_at_1_chance"]


def test_learnable_lambda_moves_and_fixed_lambda_does_not(tmp_path):
    # On the rotation task the context mean is noise: a learnable lambda must rise from 0.6.
    # (Adam moves theta by about lr per step, so 75 steps at lr 1e-2 allow lambda to move ~0.18.)
    kw = dict(epochs=3, lr=1e-2, anchor_lambda=0.6, anchor_lambda_min=0.0, anchor_lambda_max=1.0, warmup_epochs=0)
    data = rotation_task(800, seed=0), rotation_task(200, seed=1)
    train(tiny_config(anchor_learnable=True, **kw), *data, out_dir=tmp_path / "a", write_report=False)
    train(tiny_config(anchor_learnable=False, **kw), *data, out_dir=tmp_path / "b", write_report=False)
    learned = [r["train_loss"]["anchor_lambda"] for r in _records(tmp_path / "a")]
    fixed = [r["train_loss"]["anchor_lambda"] for r in _records(tmp_path / "b")]
    assert 0.6 < learned[0] < learned[1] < learned[2] and learned[2] > 0.6 + 0.05
    assert fixed == pytest.approx([0.6] * 3)


class _Crash(Exception):
    pass


def _crash_after(n_batches):
    def progress(done, total):
        if done == n_batches:
            raise _Crash(f"injected after {done} batches")
    return progress


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, walk_splits):
    # Dropout, a cosine schedule, random and same-article negatives: every RNG and state a resume must restore.
    cfg = tiny_config(epochs=4, dropout=0.2, lr_schedule="cosine", n_random_negatives=8,
                      hard_negatives="same_article", anchor_learnable=True, warmup_epochs=1)
    data = (walk_splits["train"], walk_splits["val"])
    train(cfg, *data, out_dir=tmp_path / "full", write_report=False)
    n_batches = -(-walk_splits["train"].n // cfg.batch_size)
    with pytest.raises(_Crash):
        train(cfg, *data, out_dir=tmp_path / "cut", write_report=False, progress=_crash_after(2 * n_batches + 3))
    assert [r["epoch"] for r in _records(tmp_path / "cut")] == [1, 2]
    train(None, *data, out_dir=tmp_path / "cut", resume=True, write_report=False)
    assert _strip_time(_records(tmp_path / "cut")) == _strip_time(_records(tmp_path / "full"))
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model_state_dict"]
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["model_state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    events = {r["epoch"]: r["events"] for r in _records(tmp_path / "full")}
    assert "warmup_end" in events[2] and "lr_change" in events[2]
    assert all("warmup_end" not in events[e] for e in (1, 3, 4))


def test_resume_refuses_changed_settings_but_accepts_more_epochs(tmp_path, walk_splits):
    data = (walk_splits["train"], walk_splits["val"])
    train(tiny_config(epochs=1), *data, out_dir=tmp_path / "r", write_report=False)
    with pytest.raises(InputError, match="lr"):
        train(tiny_config(epochs=2, lr=1e-2), *data, out_dir=tmp_path / "r", resume=True, write_report=False)
    with pytest.raises(InputError, match="usable windows"):
        train(tiny_config(epochs=2), walk_splits["val"], walk_splits["val"], out_dir=tmp_path / "r", resume=True)
    result = train(tiny_config(epochs=2), *data, out_dir=tmp_path / "r", resume=True, write_report=False)
    assert result.epochs_completed == 2 and len(_records(tmp_path / "r")) == 2
    assert json.loads((tmp_path / "r" / "config.json").read_text())["epochs"] == 2
    with pytest.raises(InputError, match="already finished 2 epochs"):  # fewer epochs than done: refused
        train(tiny_config(epochs=1), *data, out_dir=tmp_path / "r", resume=True, write_report=False)
    assert len(_records(tmp_path / "r")) == 2
    assert json.loads((tmp_path / "r" / "config.json").read_text())["epochs"] == 2


_KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from train.conftest import rotation_task, tiny_config
    from lvmdiag.train.trainer import train
    cfg = tiny_config(epochs=5)
    n_batches = -(-600 // cfg.batch_size)
    def progress(done, total):
        if done == n_batches + n_batches // 2:  # the middle of epoch 2
            os.kill(os.getpid(), signal.SIGKILL)
    train(cfg, rotation_task(600, seed=0), rotation_task(150, seed=1), out_dir={out!r}, progress=progress,
          write_report=False)
""")


def test_sigkill_mid_epoch_leaves_the_finished_epochs(tmp_path):
    out = tmp_path / "killed"
    script = _KILL_SCRIPT.format(tests=str(REPO / "tests"), out=str(out))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1]  # every line parses; epoch 2 never finished
    assert json.loads((out / "config.json").read_text())["format"] == "lvmdiag-run/1"
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1
    # and the run resumes to the end
    result = train(None, rotation_task(600, seed=0), rotation_task(150, seed=1), out_dir=out, resume=True,
                   write_report=False)
    assert [r["epoch"] for r in _records(out)] == [1, 2, 3, 4, 5] and result.epochs_completed == 5


def test_checkpoints_load_with_weights_only_and_hold_plain_values(tmp_path, walk_splits):
    train(tiny_config(epochs=2, lr_schedule="step", lr_step_epochs=1), walk_splits["train"], walk_splits["val"],
          out_dir=tmp_path / "run", write_report=False)
    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(tmp_path / "run" / name, weights_only=True)
        assert ckpt["format"] == "lvmdiag-checkpoint/1"
        assert {"epoch", "model_state_dict", "optimizer_state_dict", "model_config", "config", "metrics"} <= set(ckpt)
        json.dumps(ckpt["metrics"])  # plain Python numbers only
        json.dumps(ckpt["config"])
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=True)["best_epoch"] in (1, 2)


def test_refuses_a_non_empty_out_dir_unless_resume_or_force(tmp_path, walk_splits):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    data = (walk_splits["train"], walk_splits["val"])
    with pytest.raises(InputError, match="not empty"):
        train(tiny_config(epochs=1), *data, out_dir=out, write_report=False)
    train(tiny_config(epochs=1), *data, out_dir=out, force=True, write_report=False)
    assert (out / "notes.txt").read_text() == "mine"  # --force replaces run files only
    assert len(_records(out)) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing")
def test_cuda_requested_without_a_gpu_is_a_clear_input_error(tmp_path, walk_splits):
    with pytest.raises(InputError, match="CUDA is not available"):
        train(tiny_config(device="cuda"), walk_splits["train"], walk_splits["val"], out_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()  # refused before touching the run directory


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_run(tmp_path, walk_splits):  # pragma: no cover - run where a GPU exists
    result = train(tiny_config(device="cuda", epochs=1), walk_splits["train"], walk_splits["val"],
                   out_dir=tmp_path / "r", write_report=False)
    assert result.epochs_completed == 1


def test_baselines_sit_beside_the_model_when_copying_is_strong(tmp_path, walk_splits):
    # Next chunk = predecessor + noise (adjacent cosine 0.8): copy-last is a strong baseline and the
    # run must show it next to the model, so "worse than copying" cannot go unnoticed.
    result = train(tiny_config(epochs=2), walk_splits["train"], walk_splits["val"], out_dir=tmp_path / "run",
                   write_report=False)
    base = json.loads((tmp_path / "run" / "baselines.json").read_text())
    for split in ("train", "val"):
        for name in ("copy_last", "mean_context", "ridge"):
            assert {"cos_next", "cos_prev", "margin"} <= set(base[split][name])
    from lvmdiag.train.baselines import RIDGE_ALPHAS

    assert base["val"]["ridge"]["ridge_alpha"] == base["train"]["ridge"]["ridge_alpha"] in RIDGE_ALPHAS  # chosen
    assert base["val"]["copy_last"]["cos_next"] == pytest.approx(0.8, abs=1e-4)  # planted exactly
    assert base["val"]["copy_last"]["cos_prev"] == pytest.approx(1.0, abs=1e-6)
    model_next = _records(tmp_path / "run")[-1]["eval"]["val"]["cos_next"]
    assert model_next < base["val"]["copy_last"]["cos_next"]  # a 2-epoch tiny model does not beat copying...
    md = result.to_markdown()
    assert "copy_last (val)" in md and "mean_context (val)" in md and "model (val)" in md  # ...and it shows


def test_collapse_is_flagged_and_a_report_failure_never_loses_the_run(tmp_path, walk_splits, monkeypatch):
    import lvmdiag.report as report_pkg

    calls = []

    def broken_report(run_dir):
        calls.append(Path(run_dir))
        raise RuntimeError("report bug")

    monkeypatch.setattr(report_pkg, "write_run_report", broken_report, raising=False)
    # Planted val cos_next per epoch: -10% (below collapse_drop = 0.2, not a collapse), -55% (a collapse),
    # then a rise. Planted rather than provoked with a huge lr, whose drops depend on the platform.
    import dataclasses

    from lvmdiag.train import trainer as trainer_mod

    planted, real = iter([0.5, 0.45, 0.2, 0.21]), trainer_mod.evaluate_model

    def planted_val(model, arrays, config, device):
        m = real(model, arrays, config, device)
        return dataclasses.replace(m, cos_next=next(planted)) if arrays.name == "val" else m

    monkeypatch.setattr(trainer_mod, "evaluate_model", planted_val)
    with pytest.warns(Warning, match="report"):
        result = train(tiny_config(epochs=4), walk_splits["train"], walk_splits["val"], out_dir=tmp_path / "run")
    recs = _records(tmp_path / "run")
    assert [r["eval"]["val"]["cos_next"] for r in recs] == [0.5, 0.45, 0.2, 0.21]
    assert result.collapse_epochs == [3]
    assert [r["epoch"] for r in recs if "collapse" in r["events"]] == [3]
    assert len(calls) == 2  # once at the collapse (mid-run), once at the end
    assert not result.report_written and "report bug" in result.report_error
    assert result.epochs_completed == 4 and (tmp_path / "run" / "last.pt").exists()


def test_report_is_written_at_the_end(tmp_path, walk_splits):
    from lvmdiag.results import fmt

    result = train(tiny_config(epochs=3), walk_splits["train"], walk_splits["val"], out_dir=tmp_path / "run")
    assert result.report_written, result.report_error
    text = (tmp_path / "run" / "REPORT.md").read_text()
    # the model's val cos_next and both trivial predictors' values on the same data are in the report
    base = result.baselines["val"]
    assert "copy-last" in text and "mean-of-context" in text
    for value in (result.final["eval"]["val"]["cos_next"], base["copy_last"]["cos_next"],
                  base["mean_context"]["cos_next"]):
        assert fmt(value) in text, fmt(value)


def test_same_article_sampler_draws_another_window_of_the_same_article():
    from lvmdiag.train.trainer import _SameArticleSampler

    ids = np.array([5, 5, 9, 5, 7, 9, 9, 2])  # article 7 and 2 have one window: no hard negative
    sampler = _SameArticleSampler(ids)
    gen = torch.Generator().manual_seed(0)
    rows = torch.arange(len(ids)).repeat(50)
    other, mask = sampler.sample(rows, gen)
    assert mask.tolist() == [bool((ids == ids[r]).sum() > 1) for r in rows.tolist()]
    ok = other[mask]
    assert (torch.from_numpy(ids)[ok] == torch.from_numpy(ids)[rows[mask]]).all()
    assert (ok != rows[mask]).all()
    # every other window of article 5 is drawn for row 0
    assert set(other[rows == 0].tolist()) == {1, 3}


def test_logged_gate_weight_reflects_the_planted_share_of_forward_windows(tmp_path):
    # 30% of windows move forward (target near c_last), 70% move back (target near c_{K-1}).
    from lvmdiag.data.sequences import SequenceSet

    rng = np.random.default_rng(4)
    n, k, d = 400, 5, 16
    ctx = rng.standard_normal((n, k, d))
    ctx /= np.linalg.norm(ctx, axis=-1, keepdims=True)
    forward = rng.random(n) < 0.3
    tgt = np.where(forward[:, None], ctx[:, -1], ctx[:, -2]) + 0.3 * rng.standard_normal((n, d)) / np.sqrt(d)
    tgt /= np.linalg.norm(tgt, axis=-1, keepdims=True)
    data = SequenceSet(ctx.astype(np.float32), tgt.astype(np.float32))
    train(tiny_config(epochs=1, gate_weak_weight=0.25), data, data, out_dir=tmp_path / "run", write_report=False)
    logged = _records(tmp_path / "run")[0]["train_loss"]
    share = forward.mean()
    assert logged["gate_strong_share"] == pytest.approx(share, abs=1e-9)
    assert logged["gate_weight_mean"] == pytest.approx(share + 0.25 * (1 - share), abs=1e-6)
    assert logged["gate_weight_std"] == pytest.approx(0.75 * np.sqrt(share * (1 - share)), abs=1e-6)


def test_bad_data_leaves_no_run_directory_behind(tmp_path, walk_splits):
    # K and D are checked before anything is created, and --force clears an old run only once the new
    # data has passed (a typo must not cost the old run).
    with pytest.raises(InputError, match="context_length=4"):
        train(tiny_config(context_length=4), walk_splits["train"], walk_splits["val"], out_dir=tmp_path / "k")
    assert not (tmp_path / "k").exists()
    old = tmp_path / "old"
    train(tiny_config(epochs=1), walk_splits["train"], walk_splits["val"], out_dir=old, write_report=False)
    before = sorted(p.name for p in old.iterdir())
    with pytest.raises(InputError, match="-d"):
        train(tiny_config(epochs=1), walk_splits["train"], rotation_task(50, d=8), out_dir=old, force=True)
    assert sorted(p.name for p in old.iterdir()) == before and len(_records(old)) == 1


def test_a_diverged_epoch_is_a_collapse_and_never_the_best(tmp_path, walk_splits, monkeypatch):
    import dataclasses
    import math

    from lvmdiag.train import trainer as trainer_mod

    real, calls = trainer_mod.evaluate_model, []

    def diverge_in_epoch_2(model, arrays, config, device):  # 2 calls per epoch: train subsample, val
        calls.append(arrays.name)
        m = real(model, arrays, config, device)
        return dataclasses.replace(m, cos_next=float("nan"), margin=float("nan")) if len(calls) in (3, 4) else m

    monkeypatch.setattr(trainer_mod, "evaluate_model", diverge_in_epoch_2)
    result = train(tiny_config(epochs=3), walk_splits["train"], walk_splits["val"], out_dir=tmp_path / "run",
                   write_report=False)
    recs = _records(tmp_path / "run")
    assert recs[1]["eval"]["val"]["cos_next"] is None  # NaN is written as null
    assert result.collapse_epochs == [2] and "collapse" in recs[1]["events"]
    assert result.best_epoch in (1, 3) and math.isfinite(result.best_value)
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=True)["epoch"] == result.best_epoch
