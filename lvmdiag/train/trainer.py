"""The P7 training loop: one function, clearly sectioned, writing the run directory as it goes.

Sections of :func:`train`: (1) config, device and run directory; (2) data; (3) the one seed step,
model, optimiser, schedule; (4) baselines; (5) resume; (6) epochs: batches, evaluation of every split
by the one evaluation function, metrics line, checkpoints, collapse check; (7) the report.

Randomness: ``torch.manual_seed(seed)`` once (model init and dropout); each epoch's shuffling and
negative sampling use a ``torch.Generator`` seeded with ``(seed, epoch)``; the train subsample uses
``numpy.random.default_rng(seed)``. The global torch RNG state is saved in ``last.pt``, so a resumed run
continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError, LvmdiagWarning
from lvmdiag.results import Result, fmt, md_table, to_jsonable
from lvmdiag.train import rundir
from lvmdiag.train.baselines import baseline_predictors, evaluate_baselines, select_ridge_alpha
from lvmdiag.train.config import RESUMABLE_KEYS, TrainConfig
from lvmdiag.train.data import prepare_split, subsample_rows
from lvmdiag.train.inference import check_shapes, evaluate_model, resolve_device
from lvmdiag.train.losses import p7_loss
from lvmdiag.train.models import P7Ranker, build_model, model_config

ProgressCallback = Callable[[int, int], None]
CHECKPOINT_FORMAT = "lvmdiag-checkpoint/1"


@dataclass(frozen=True)
class TrainResult(Result):
    """What a finished (or resumed-and-finished) run produced.

    Attributes
    ----------
    run_dir : the run directory.
    epochs_completed : the last finished epoch.
    best_epoch, best_value : epoch and value of the val ``best_metric`` saved in ``best.pt``.
    final : the last ``metrics.jsonl`` record.
    baselines : ``{split: {baseline: metrics}}`` as in ``baselines.json``.
    collapse_epochs : epochs flagged as a collapse (val cos_next fell by >= ``collapse_drop``, or became NaN).
    report_written : whether ``lvmdiag.report.write_run_report`` succeeded at the end.
    report_error : why it did not, or None.
    """

    run_dir: str
    epochs_completed: int
    best_epoch: int | None
    best_value: float | None
    final: dict[str, Any]
    baselines: dict[str, Any]
    collapse_epochs: list[int] = field(default_factory=list)
    report_written: bool = False
    report_error: str | None = None

    def to_markdown(self) -> str:
        rows = []
        for split, m in self.final.get("eval", {}).items():
            rows.append([f"model ({split})", fmt(m["cos_next"]), fmt(m["cos_prev"]), fmt(m["margin"]),
                         fmt(m["recall_at_1"]), fmt(m["rank_mean"], 2)])
        for split in ("val",):
            for name, m in self.baselines.get(split, {}).items():
                rows.append([f"{name} ({split})", fmt(m["cos_next"]), fmt(m["cos_prev"]), fmt(m["margin"]),
                             fmt(m["recall_at_1"]), fmt(m["rank_mean"], 2)])
        table = md_table(["predictor", "cos_next", "cos_prev", "margin", "recall@1", "mean rank"], rows)
        lines = [f"# Training run {self.run_dir}", "",
                 f"Epochs completed: {self.epochs_completed}; best epoch {self.best_epoch} "
                 f"({fmt(self.best_value)}).", "", table]
        lines += ["", "prev = c_last (the last context vector). The directional gate is per sample, from the window's "
                  "own forward signal cos(t, c_K) - cos(t, c_{K-1}), not upstream's cos(c_last, t) - cos(c_last, prev) "
                  "(always <= 0 with prev = c_last); every definition is in the run's config.json (\"definitions\")."]
        if self.collapse_epochs:
            lines += ["", f"Collapse detected at epoch(s) {self.collapse_epochs}."]
        if not self.report_written:
            lines += ["", f"REPORT.md not written: {self.report_error}"]
        return "\n".join(lines) + "\n"


# -- helpers ------------------------------------------------------------------------------------------
def _finite_or_nan(x: float | None) -> float:
    """A logged metric as a float: None (how JSON holds a NaN) becomes NaN."""
    return float("nan") if x is None else float(x)


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on weight matrices only (not biases, norms, positions or lambda's theta)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and not name.endswith("pos") else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr)


def _scheduler(opt: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler | None:
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(config.epochs - 1, 1),
                                                          eta_min=config.lr * config.lr_min_ratio)
    if config.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=config.lr_step_epochs, gamma=config.lr_step_gamma)
    return None


class _SameArticleSampler:
    """Draws, per row, a uniformly random *other* window of the same article (mask False if none)."""

    def __init__(self, article_ids: np.ndarray) -> None:
        order = np.argsort(article_ids, kind="stable")
        _, start, count = np.unique(article_ids[order], return_index=True, return_counts=True)
        group = np.repeat(np.arange(start.size), count)
        self.order = torch.from_numpy(order)
        self.start = torch.from_numpy(start[group][np.argsort(order)])  # per row: its group's start in `order`
        self.size = torch.from_numpy(count[group][np.argsort(order)])
        self.pos = torch.from_numpy((np.arange(order.size) - start[group])[np.argsort(order)])

    def sample(self, rows: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.size[rows]
        off = 1 + (torch.rand(rows.shape[0], generator=gen) * (size - 1).clamp(min=1)).long()
        other = self.order[self.start[rows] + (self.pos[rows] + off) % size]
        return other, size > 1


def _write_report(run_dir: Path) -> str | None:
    """Call the report engine; any failure becomes a warning and a returned message, never a lost run."""
    try:
        from lvmdiag.report import write_run_report  # lazy: the report engine is optional for training
    except ImportError as exc:
        msg = f"report engine unavailable ({exc}); run `lvmdiag report {run_dir}` later."
        warnings.warn(msg, LvmdiagWarning, stacklevel=3)
        return msg
    try:
        write_run_report(run_dir)
    except Exception as exc:  # noqa: BLE001 - the run must survive any report bug
        msg = f"writing the report failed ({type(exc).__name__}: {exc}); the run itself is complete."
        warnings.warn(msg, LvmdiagWarning, stacklevel=3)
        return msg
    return None


def _resolve_config(config: TrainConfig | None, run_dir: Path, resume: bool) -> TrainConfig:
    """On resume the saved config wins; only ``RESUMABLE_KEYS`` (epochs, device, paths) may change."""
    if not resume:
        if config is None:
            raise InputError("a config is needed to start a run.")
        return config
    saved = rundir.read_config(run_dir)
    if config is None:
        return saved
    a, b = saved.to_dict(), config.to_dict()
    changed = sorted(k for k in a if a[k] != b[k] and k not in RESUMABLE_KEYS)
    if changed:
        raise InputError(f"cannot resume {run_dir} with different settings for {changed} "
                         f"(saved: {[a[k] for k in changed]}); only {sorted(RESUMABLE_KEYS)} may change.")
    if saved.lr_schedule == "cosine" and config.epochs != saved.epochs:
        raise InputError(f"cannot change epochs ({saved.epochs} -> {config.epochs}) when resuming a run with a cosine "
                         "schedule: its length is fixed by the original epochs; start a new run instead.")
    return saved.replace(**{k: getattr(config, k) for k in RESUMABLE_KEYS})


# -- the loop -----------------------------------------------------------------------------------------
def train(config: TrainConfig | None, train_set: SequenceSet, val_set: SequenceSet,
          ood_set: SequenceSet | None = None, *, out_dir: str | Path, resume: bool = False, force: bool = False,
          write_report: bool = True, progress: ProgressCallback | None = None) -> TrainResult:
    """Train a P7 ranker, writing the run directory as it goes (see :mod:`lvmdiag.train.rundir`).

    Parameters
    ----------
    config : the settings; on ``resume`` it may be None (the saved one is used) and only the epochs,
        device and file paths may differ from the saved config.
    train_set, val_set, ood_set : the splits (invalid rows are dropped, with a warning).
    out_dir : the run directory; refused when non-empty unless ``resume`` or ``force``.
    resume : continue from ``last.pt`` (or from scratch when the run died before its first epoch).
    force : start over in a non-empty directory (only this trainer's run files are replaced).
    write_report : call ``lvmdiag.report.write_run_report`` at the end and on a collapse.
    progress : optional ``callback(done_batches, total_batches)`` over the remaining epochs.

    Returns
    -------
    TrainResult
        ``run_dir``, ``epochs_completed``, ``best_epoch``, ``best_value``, ``final`` (last metrics
        record), ``baselines``, ``collapse_epochs``, ``report_written``, ``report_error``.
    """
    # (1) config, device, run directory (checked; nothing is created or removed before the data is) ---
    if config is not None:
        resolve_device(config.device)  # fail before touching the run directory
    run_dir = rundir.check_run_dir(out_dir, resume=resume, force=force)
    config = _resolve_config(config, run_dir, resume)
    device = resolve_device(config.device)
    # (2) data ---------------------------------------------------------------------------------------
    splits = {"train": prepare_split(train_set, "train"), "val": prepare_split(val_set, "val")}
    if ood_set is not None:
        splits["ood"] = prepare_split(ood_set, "ood")
    d_in = check_shapes(config, splits)
    tr = splits["train"]
    if tr.n < 2:  # InfoNCE ranks each target against the other targets of its batch: one window has none
        raise InputError(f"{train_set.source}: training needs at least 2 usable windows (InfoNCE ranks each target "
                         f"against the others in its batch); got {tr.n}.")
    eval_rows = subsample_rows(tr.n, config.train_eval_size, config.seed)
    eval_splits = {"train": tr.rows(eval_rows), **{k: v for k, v in splits.items() if k != "train"}}
    sampler = None
    if config.hard_negatives == "same_article":
        if tr.article_ids is None:
            raise InputError("hard_negatives='same_article' needs article ids in the training file; "
                             "use a file with article_ids or set hard_negatives to 'none'.")
        sampler = _SameArticleSampler(tr.article_ids)
    if resume and (run_dir / rundir.EVAL_ROWS).exists():
        saved_n = json.loads((run_dir / rundir.EVAL_ROWS).read_text(encoding="utf-8"))["n_train_rows"]
        if saved_n != tr.n:
            raise InputError(f"cannot resume {run_dir}: the training data has {tr.n} usable windows but the run "
                             f"was trained on {saved_n}; resume with the same training file.")
    if resume and (run_dir / rundir.LAST).exists():
        done_epochs = int(rundir.load_checkpoint(run_dir / rundir.LAST)["epoch"])
        if config.epochs < done_epochs:
            raise InputError(f"cannot resume {run_dir} with epochs={config.epochs}: it has already finished "
                             f"{done_epochs} epochs; pass --epochs {done_epochs} or more.")
    run_dir = rundir.prepare_run_dir(run_dir, resume=resume, force=force)  # only now: create or clear
    rundir.write_config(run_dir, config)  # on resume: the saved config with the new epochs/device/paths
    rundir.write_json(run_dir, rundir.EVAL_ROWS, {"n_train_rows": tr.n, "rows": eval_rows.tolist()})
    # (3) the one seed step, model, optimiser, schedule ----------------------------------------------
    torch.manual_seed(config.seed)
    model: P7Ranker = build_model(config, d_in).to(device)
    opt = _optimizer(model, config)
    sched = _scheduler(opt, config)
    # (4) baselines, computed once by the same evaluation function ------------------------------------
    if resume and (run_dir / rundir.BASELINES).exists():
        baselines = json.loads((run_dir / rundir.BASELINES).read_text(encoding="utf-8"))
    else:
        alpha = config.ridge_alpha
        if alpha is None:
            alpha, _ = select_ridge_alpha(tr.contexts, tr.targets, tr.article_ids)
        preds = baseline_predictors(tr.contexts, tr.targets, alpha)
        result = evaluate_baselines(preds, {k: (v.contexts, v.targets) for k, v in eval_splits.items()},
                                    pool_size=config.eval_pool_size, batch_size=config.eval_batch_size)
        baselines = {s: {b: m.to_dict() for b, m in per.items()} for s, per in result.items()}
        for per in baselines.values():
            per["ridge"]["ridge_alpha"] = float(alpha)  # the penalty used (chosen or configured)
        rundir.write_json(run_dir, rundir.BASELINES, baselines)
    # (5) resume -------------------------------------------------------------------------------------
    start_epoch, best_value, best_epoch, prev_lr = 0, None, None, None
    if resume and (run_dir / rundir.LAST).exists():
        ckpt = rundir.load_checkpoint(run_dir / rundir.LAST)
        model.load_state_dict(ckpt["model_state_dict"])
        opt.load_state_dict(ckpt["optimizer_state_dict"])
        if sched is not None and ckpt.get("scheduler_state_dict") is not None:
            sched.load_state_dict(ckpt["scheduler_state_dict"])
        torch.set_rng_state(ckpt["rng_state"]["torch"])
        if device.type == "cuda" and ckpt["rng_state"].get("cuda") is not None:
            torch.cuda.set_rng_state(ckpt["rng_state"]["cuda"], device)
        start_epoch, best_value, best_epoch, prev_lr = (int(ckpt["epoch"]), ckpt["best_value"],
                                                        ckpt["best_epoch"], ckpt["lr"])
    if resume:
        rundir.truncate_metrics(run_dir, start_epoch)
    history = rundir.read_metrics(run_dir)
    collapse_epochs = [int(r["epoch"]) for r in history if "collapse" in r.get("events", [])]
    prev_val_next = _finite_or_nan(history[-1]["eval"]["val"]["cos_next"]) if history else None
    # (6) epochs -------------------------------------------------------------------------------------
    n_batches = -(-tr.n // config.batch_size)
    total_batches = max(config.epochs - start_epoch, 0) * n_batches
    done_batches = 0
    record: dict[str, Any] = history[-1] if history else {}
    tr_ctx, tr_tgt = torch.from_numpy(tr.contexts), torch.from_numpy(tr.targets)
    for epoch in range(start_epoch + 1, config.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        lr = float(opt.param_groups[0]["lr"])
        events = []
        if config.warmup_epochs > 0 and epoch == config.warmup_epochs + 1:
            events.append("warmup_end")
        if prev_lr is not None and lr != prev_lr:
            events.append("lr_change")
        teacher_active = epoch <= config.warmup_epochs
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        perm = torch.randperm(tr.n, generator=gen)
        sums = {"loss": 0.0, "loss_rank": 0.0, "loss_margin": 0.0, "loss_teacher": 0.0, "grad_norm": 0.0}
        gate_sum = gate_sq = gate_strong = 0.0
        violations = 0
        for b in range(n_batches):
            rows = perm[b * config.batch_size:(b + 1) * config.batch_size]
            ctx, tgt = tr_ctx[rows].to(device), tr_tgt[rows].to(device)  # (B, K, D), (B, D)
            rand_neg = hard_neg = hard_mask = None
            if config.n_random_negatives:
                rand_neg = tr_tgt[torch.randint(tr.n, (config.n_random_negatives,), generator=gen)].to(device)
            if sampler is not None:
                other, hard_mask = sampler.sample(rows, gen)
                hard_neg, hard_mask = tr_tgt[other].to(device), hard_mask.to(device)
            q, _ = model(ctx)
            terms = p7_loss(q, ctx, tgt, config, teacher_active=teacher_active, random_negatives=rand_neg,
                            hard_negatives=hard_neg, hard_mask=hard_mask)
            opt.zero_grad(set_to_none=True)
            terms.loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                   config.grad_clip if config.grad_clip > 0 else float("inf"))
            opt.step()
            bsz = rows.shape[0]
            sums["loss"] += terms.loss.item() * bsz
            sums["loss_rank"] += terms.loss_rank.item() * bsz
            sums["loss_margin"] += terms.loss_margin.item() * bsz
            sums["loss_teacher"] += (terms.loss_teacher.item() if teacher_active else 0.0) * bsz
            sums["grad_norm"] += float(gnorm) * bsz
            gate_sum += float(terms.gate.sum())
            gate_sq += float((terms.gate ** 2).sum())
            gate_strong += float((terms.gate == 1.0).sum())
            violations += terms.teacher_violations
            done_batches += 1
            if progress is not None:
                progress(done_batches, total_batches)
        if sched is not None:
            sched.step()
        gate_mean = gate_sum / tr.n
        train_loss = {
            "loss": sums["loss"] / tr.n, "loss_rank": sums["loss_rank"] / tr.n,
            "loss_margin": sums["loss_margin"] / tr.n, "loss_teacher": sums["loss_teacher"] / tr.n,
            "teacher_active": teacher_active, "teacher_violations_per_batch": violations / n_batches,
            "gate_weight_mean": gate_mean, "gate_weight_std": max(gate_sq / tr.n - gate_mean ** 2, 0.0) ** 0.5,
            "gate_strong_share": gate_strong / tr.n, "grad_norm_mean": sums["grad_norm"] / tr.n,
            "anchor_lambda": model.anchor.lam().item(),
        }
        metrics = {name: evaluate_model(model, arr, config, device).to_dict() for name, arr in eval_splits.items()}
        val_next = _finite_or_nan(metrics["val"]["cos_next"])  # to_dict() writes NaN as None
        # a non-finite val cos_next (a diverged model) is a collapse too: NaN compares False everywhere
        nan_now = not math.isfinite(val_next) and (prev_val_next is None or math.isfinite(prev_val_next))
        if nan_now or (prev_val_next is not None and prev_val_next > 0
                       and (prev_val_next - val_next) / prev_val_next >= config.collapse_drop):
            events.append("collapse")
            collapse_epochs.append(epoch)
        record = {"epoch": epoch, "time_s": time.perf_counter() - t0, "lr": lr, "events": events,
                  "train_loss": train_loss, "eval": metrics}
        rundir.append_metrics(run_dir, record)
        value = _finite_or_nan(metrics["val"][config.best_metric])
        payload = {
            "format": CHECKPOINT_FORMAT, "epoch": epoch,
            "model_state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer_state_dict": opt.state_dict(),
            "scheduler_state_dict": sched.state_dict() if sched is not None else None,
            "model_config": model_config(config, d_in), "config": config.to_dict(),
            "metrics": to_jsonable(record), "lr": lr,
            "rng_state": {"torch": torch.get_rng_state(),
                          "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
        }
        if math.isfinite(value) and (best_value is None or value > best_value):  # NaN never becomes "best"
            best_value, best_epoch = float(value), epoch
            rundir.save_checkpoint(run_dir / rundir.BEST, {**payload, "best_value": best_value, "best_epoch": epoch})
        rundir.save_checkpoint(run_dir / rundir.LAST, {**payload, "best_value": best_value, "best_epoch": best_epoch})
        if "collapse" in events and write_report:
            _write_report(run_dir)  # a mid-run report, so a collapse is explained while the run goes on
        prev_val_next, prev_lr = val_next, lr
    # (7) the report ---------------------------------------------------------------------------------
    report_error = _write_report(run_dir) if write_report else "write_report=False"
    return TrainResult(run_dir=str(run_dir), epochs_completed=int(record.get("epoch", 0)), best_epoch=best_epoch,
                       best_value=best_value, final=to_jsonable(record), baselines=baselines,
                       collapse_epochs=collapse_epochs, report_written=report_error is None,
                       report_error=report_error)
