"""`lvmdiag train` (a compact P7 trainer writing a run directory) and `lvmdiag evaluate` (its metrics for any file).

torch is imported only inside the command bodies, so `lvmdiag --help` and every other command work
without it.
"""

from __future__ import annotations

import importlib.util
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from lvmdiag.errors import InputError
from lvmdiag_cli._common import (
    AllowPickleOption,
    QuietOption,
    TrainOption,
    V,
    ValOption,
    check_output_dir,
    check_outputs,
    emit,
    handle_errors,
    output_set,
    progress_bar,
    ranged,
)


class ModelType(str, Enum):
    transformer = "transformer"
    lstm = "lstm"


def _require_torch() -> None:
    if importlib.util.find_spec("torch") is None:
        raise InputError("training needs torch, which is not installed: install lvmdiag[train] "
                         "(pip install 'lvmdiag[train]').")


_THREADS_HELP = ("CPU threads for torch (default: torch's choice). On a busy or shared machine 1 can be many "
                 "times faster: idle threads spin-wait for busy cores.")


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise InputError(f"--threads must be >= 1; got {threads}.")
    import torch

    torch.set_num_threads(threads)


def _refuse_replacing_inputs(out: Path, force: bool, paths: dict[str, Path | None]) -> None:
    """``--force`` deletes the run files in --out: none of them may be an input (e.g. ``--config OUT/config.json``),
    and ``--json`` must not be one of them either."""
    from lvmdiag.train.rundir import RUN_FILES

    here = out.resolve()
    for label, p in paths.items():
        if p is None or str(p) == "-" or Path(p).name not in RUN_FILES or Path(p).resolve().parent != here:
            continue
        if label == "--json":
            raise InputError(f"--json {p} is one of the run files the trainer writes in --out {out}; choose another path.")
        if force:
            raise InputError(f"{label} {p} lies in --out {out}, whose run files --force replaces; copy it out of "
                             f"{out} first (inputs are never overwritten).")


def train_cmd(
    train: TrainOption,
    val: ValOption,
    out: Annotated[Path, typer.Option("--out", help="Run directory (must be empty unless --resume/--force).")],
    ood: Annotated[Optional[Path], typer.Option("--ood", help="Out-of-distribution sequences, evaluated each epoch.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="JSON config (upstream config.json keys); flags override it.")] = None,
    epochs: Annotated[Optional[int], ranged(V.COUNT, "--epochs", help="Number of epochs.")] = None,
    batch_size: Annotated[Optional[int], ranged(V.COUNT, "--batch-size", help="Windows per batch (InfoNCE negatives = batch - 1).")] = None,
    lr: Annotated[Optional[float], ranged(V.POSITIVE, "--lr", help="AdamW learning rate.")] = None,
    model: Annotated[Optional[ModelType], typer.Option("--model", help="Backbone.")] = None,
    d_model: Annotated[Optional[int], ranged(V.COUNT, "--d-model", help="Backbone width.")] = None,
    layers: Annotated[Optional[int], ranged(V.COUNT, "--layers", help="Encoder / LSTM layers.")] = None,
    nhead: Annotated[Optional[int], ranged(V.COUNT, "--nhead", help="Attention heads (transformer).")] = None,
    seed: Annotated[Optional[int], ranged(V.SEED, "--seed", help="The one seed for everything.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="cpu (default), cuda or cuda:N.")] = None,
    w_rank: Annotated[Optional[float], ranged(V.NONNEG, "--w-rank", help="InfoNCE weight.")] = None,
    w_margin: Annotated[Optional[float], ranged(V.NONNEG, "--w-margin", help="Prev-repel hinge weight.")] = None,
    w_teacher: Annotated[Optional[float], ranged(V.NONNEG, "--w-teacher", help="Teacher pull weight (warmup only).")] = None,
    margin: Annotated[Optional[float], ranged(V.FINITE, "--margin", help="Hinge margin m.")] = None,
    temperature: Annotated[Optional[float], ranged(V.POSITIVE, "--temperature", help="InfoNCE temperature.")] = None,
    anchor_lambda: Annotated[Optional[float], ranged(V.UNIT, "--anchor-lambda", help="Anchoring lambda (initial if learnable).")] = None,
    anchor_learnable: Annotated[Optional[bool], typer.Option("--anchor-learnable/--no-anchor-learnable", help="Learn lambda within its bounds.")] = None,
    warmup_epochs: Annotated[Optional[int], ranged(V.NONNEG_INT, "--warmup-epochs", help="Epochs with the teacher pull.")] = None,
    lr_schedule: Annotated[Optional[str], typer.Option("--lr-schedule", help="none, cosine or step.")] = None,
    weight_decay: Annotated[Optional[float], ranged(V.NONNEG, "--weight-decay", help="AdamW weight decay.")] = None,
    grad_clip: Annotated[Optional[float], ranged(V.NONNEG, "--grad-clip", help="Clip the global gradient norm (0 = off).")] = None,
    random_negatives: Annotated[Optional[int], ranged(V.NONNEG_INT, "--random-negatives", help="Extra random training targets per batch as InfoNCE negatives.")] = None,
    hard_negatives: Annotated[Optional[str], typer.Option("--hard-negatives", help="none or same_article (a target of another window of the same article).")] = None,
    gate_threshold: Annotated[Optional[float], ranged(V.FINITE, "--gate-threshold", help="A window with forward signal >= this gets gate weight 1.")] = None,
    gate_weak_weight: Annotated[Optional[float], ranged(V.NONNEG, "--gate-weak-weight", help="Gate weight of the other windows.")] = None,
    teacher_threshold: Annotated[Optional[float], ranged(V.FINITE, "--teacher-threshold", help="Teacher pull acts where cos(q', t) is below this.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from last.pt.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start over in a non-empty --out (replaces run files only).")] = False,
    allow_pickle: AllowPickleOption = False,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Write REPORT.md at the end (and on a collapse).")] = True,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the run summary as JSON ('-' = stdout).")] = None,
    no_progress: QuietOption = False,
    threads: Annotated[Optional[int], ranged(V.COUNT, "--threads", help=_THREADS_HELP)] = None,
) -> None:
    """Train a P7 ranker; metrics.jsonl, checkpoints and REPORT.md go to the run directory."""
    with handle_errors():
        _require_torch()
        _set_threads(threads)
        from lvmdiag.data.readers import load_sequences
        from lvmdiag.train import TrainConfig
        from lvmdiag.train import train as run_train

        if resume and force:
            raise InputError("--resume and --force contradict each other: choose one.")
        check_output_dir("--out", out)
        check_outputs({"--json": json_path}, [train, val, ood, config])
        _refuse_replacing_inputs(out, force, {"--train": train, "--val": val, "--ood": ood, "--config": config,
                                              "--json": json_path})
        if resume:
            base = TrainConfig.from_json(out / "config.json") if (out / "config.json").exists() else None
            if base is None:
                raise InputError(f"cannot resume: {out} has no config.json (not a run directory).")
        else:
            base = TrainConfig.from_json(config) if config is not None else TrainConfig()
        cfg = base.replace(
            epochs=epochs, batch_size=batch_size, lr=lr, model_type=model.value if model else None,
            d_model=d_model, num_layers=layers, nhead=nhead, seed=seed, device=device, w_rank=w_rank,
            w_margin=w_margin, w_teacher=w_teacher, margin=margin, temperature=temperature,
            anchor_lambda=anchor_lambda, anchor_learnable=anchor_learnable, warmup_epochs=warmup_epochs,
            lr_schedule=lr_schedule, weight_decay=weight_decay, grad_clip=grad_clip,
            n_random_negatives=random_negatives, hard_negatives=hard_negatives, gate_threshold=gate_threshold,
            gate_weak_weight=gate_weak_weight, teacher_threshold=teacher_threshold,
            train_npz=str(train), val_npz=str(val),
            ood_npz=str(ood) if ood else None, output_dir=str(out),
        )
        k = cfg.context_length
        sets = {name: load_sequences(p, split=name, k=k, allow_pickle=allow_pickle)
                for name, p in (("train", train), ("val", val), ("ood", ood)) if p is not None}
        with progress_bar("training", enabled=not no_progress) as bar:
            result = run_train(cfg, sets["train"], sets["val"], sets.get("ood"), out_dir=out, resume=resume,
                               force=force, write_report=report, progress=bar)
        emit(result.to_markdown(), None, result.to_dict(), json_path)


def evaluate_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A best.pt / last.pt written by `lvmdiag train`.")],
    data: Annotated[Path, typer.Option("--data", help="Sequences to evaluate on.")],
    split: Annotated[Optional[str], typer.Option("--split", help="Split of a two-split file (e.g. train or val); "
                                                                 "an error for any other file.")] = None,
    device: Annotated[str, typer.Option("--device", help="cpu (default), cuda or cuda:N.")] = "cpu",
    pool_size: Annotated[Optional[int], ranged(V.Range(2, integer=True), "--pool-size", help="Retrieval pool (default: the run's).")] = None,
    allow_pickle: AllowPickleOption = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the markdown here instead of stdout.")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the metrics as JSON ('-' = stdout).")] = None,
    threads: Annotated[Optional[int], ranged(V.COUNT, "--threads", help=_THREADS_HELP)] = None,
    quiet: QuietOption = False,
) -> None:
    """Recompute the training log's metrics (same function, eval mode) for a checkpoint on any file."""
    with handle_errors():
        _require_torch()
        _set_threads(threads)
        check_outputs({"--out": out, "--json": json_path}, [checkpoint, data])
        from lvmdiag.train import evaluate_file

        with progress_bar("evaluate", enabled=not quiet) as bar:
            result = evaluate_file(checkpoint, data, split=split, allow_pickle=allow_pickle, device=device,
                                   pool_size=pool_size, progress=bar)
        with output_set() as outputs:
            emit(result.to_markdown(), out, result.to_dict(), json_path, outputs)


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("evaluate")(evaluate_cmd)
