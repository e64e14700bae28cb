"""Running a ranker for evaluation: device choice, the predictor wrapper, checkpoints, ``lvmdiag evaluate``.

Every number comes from :func:`lvmdiag.train.evaluate.evaluate` (the one evaluation function), with
the model in eval mode, so what ``lvmdiag evaluate`` prints for a file equals what the training log
recorded for the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError
from lvmdiag.results import Result, fmt, md_table
from lvmdiag.train import rundir
from lvmdiag.train.baselines import copy_last, mean_context
from lvmdiag.train.config import TrainConfig
from lvmdiag.train.data import SplitArrays, prepare_split
from lvmdiag.train.evaluate import EvalMetrics, Predictor, evaluate
from lvmdiag.train.models import P7Ranker, build_model


def resolve_device(name: str) -> torch.device:
    """``torch.device`` for ``name``; ``InputError`` when CUDA is requested but unavailable."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name} requested but CUDA is not available (torch {torch.__version__}, "
                         "no GPU or a CPU-only build); use --device cpu.")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"--device {name!r} is not a valid torch device: {exc}.") from None


def model_predictor(model: nn.Module, device: torch.device) -> Predictor:
    """Wrap a ranker as an evaluation predictor (no gradients; the caller sets eval mode)."""

    def predict(ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            q, q_raw = model(torch.from_numpy(np.ascontiguousarray(ctx)).to(device))
        return q.float().cpu().numpy(), q_raw.float().cpu().numpy()

    return predict


def evaluate_model(model: nn.Module, arrays: SplitArrays, config: TrainConfig, device: torch.device) -> EvalMetrics:
    """Evaluate ``model`` on one split in eval mode (training mode restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        return evaluate(model_predictor(model, device), arrays.contexts, arrays.targets,
                        pool_size=config.eval_pool_size, batch_size=config.eval_batch_size)
    finally:
        model.train(was_training)


def check_shapes(config: TrainConfig, splits: dict[str, SplitArrays]) -> int:
    """Every split has K = ``context_length`` and one common D; returns D."""
    first, d = next(iter(splits)), next(iter(splits.values())).contexts.shape[2]
    for name, s in splits.items():
        k_s, d_s = s.contexts.shape[1], s.contexts.shape[2]
        if k_s != config.context_length:
            raise InputError(f"{name} windows have K={k_s} context vectors but the run uses context_length="
                             f"{config.context_length}; use windows of that length or set context_length in the config.")
        if d_s != d:
            raise InputError(f"{name} vectors are {d_s}-d but {first} vectors are {d}-d; use files from one encoder.")
    return d


def load_model(checkpoint: str | Path, device: str = "cpu") -> tuple[P7Ranker, TrainConfig, dict[str, Any]]:
    """Rebuild the ranker stored in ``checkpoint`` (loaded with ``weights_only=True``): (model, config, ckpt)."""
    ckpt = rundir.load_checkpoint(checkpoint)
    config = TrainConfig.from_dict(ckpt["config"], source=f"{checkpoint} (config)")
    model = build_model(config, int(ckpt["model_config"]["input_dim"]))
    model.load_state_dict(ckpt["model_state_dict"])
    model.to(resolve_device(device)).eval()
    return model, config, ckpt


@dataclass(frozen=True)
class CheckpointEvaluation(Result):
    """A checkpoint's metrics on one file, beside the trivial predictors on the same rows.

    Attributes
    ----------
    checkpoint, data : what was evaluated on what.
    epoch : the checkpoint's epoch.
    metrics : the model's metrics (the ``metrics.jsonl`` keys).
    baselines : ``{"copy_last": metrics, "mean_context": metrics}`` on the same rows.
    """

    checkpoint: str
    data: str
    epoch: int
    metrics: EvalMetrics
    baselines: dict[str, EvalMetrics]

    def to_markdown(self) -> str:
        rows = [[name, fmt(m.cos_next), fmt(m.cos_prev), fmt(m.margin), fmt(m.recall_at_1), fmt(m.rank_mean, 2)]
                for name, m in (("model", self.metrics), *self.baselines.items())]
        table = md_table(["predictor", "cos_next", "cos_prev", "margin", "recall@1", "mean rank"], rows)
        return (f"# {self.checkpoint} (epoch {self.epoch}) on {self.data}\n\n{self.metrics.to_markdown()}\n\n"
                f"## Beside trivial predictors on the same rows\n\n{table}\n")


def _prepare_eval(model_config_: dict[str, Any], config: TrainConfig, data: SequenceSet,
                  pool_size: int | None) -> tuple[TrainConfig, SplitArrays]:
    arrays = prepare_split(data)
    check_shapes(config, {arrays.name: arrays})
    if arrays.contexts.shape[2] != int(model_config_["input_dim"]):
        raise InputError(f"{data.source} has {arrays.contexts.shape[2]}-d vectors; the checkpoint expects "
                         f"{model_config_['input_dim']}-d.")
    return (config.replace(eval_pool_size=pool_size) if pool_size is not None else config), arrays


def evaluate_checkpoint(checkpoint: str | Path, data: SequenceSet, *, device: str = "cpu",
                        pool_size: int | None = None) -> EvalMetrics:
    """The same metrics as the training log, for any file: the model of ``checkpoint`` on ``data``."""
    model, config, ckpt = load_model(checkpoint, device)
    config, arrays = _prepare_eval(ckpt["model_config"], config, data, pool_size)
    return evaluate_model(model, arrays, config, resolve_device(device))


def evaluate_file(checkpoint: str | Path, data_path: str | Path, *, split: str | None = None,
                  allow_pickle: bool = False, device: str = "cpu", pool_size: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> CheckpointEvaluation:
    """``lvmdiag evaluate``: read ``data_path`` (windows of the checkpoint's K) and evaluate the model on it,
    beside copy-last and mean-of-context on the same rows. ``progress``: optional ``callback(done, total)``
    over the 4 steps (load the model, read the data, evaluate the model, evaluate the two baselines)."""
    from lvmdiag.data.readers import load_sequences, split_names

    if split is not None and Path(data_path).exists():  # on a one-split file --split would be silently ignored
        held = split_names(data_path)
        if split not in held:
            where = f"holds the splits {', '.join(held)}" if held else "holds one split, so --split does not apply"
            raise InputError(f"--split {split}: {data_path} {where}.")
    step = progress if progress is not None else (lambda done, total: None)
    step(0, 4)
    model, config, ckpt = load_model(checkpoint, device)
    step(1, 4)
    data = load_sequences(data_path, split=split, k=config.context_length, allow_pickle=allow_pickle)
    config, arrays = _prepare_eval(ckpt["model_config"], config, data, pool_size)
    step(2, 4)
    metrics = evaluate_model(model, arrays, config, resolve_device(device))
    step(3, 4)
    base = {name: evaluate(pred, arrays.contexts, arrays.targets, pool_size=config.eval_pool_size,
                           batch_size=config.eval_batch_size)
            for name, pred in (("copy_last", copy_last), ("mean_context", mean_context))}
    step(4, 4)
    return CheckpointEvaluation(str(checkpoint), str(data_path), int(ckpt["epoch"]), metrics, base)
