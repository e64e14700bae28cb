"""The trainer's configuration: one frozen dataclass, JSON in and out, validated in one place.

Key names follow the upstream P7 ``config.json`` (``context_length``, ``model_type``, ``d_model``,
``anchor_lambda``, ``w_rank`` ...), so a user's old config file loads unchanged; keys this trainer
adds are documented on the fields. This module does not import torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lvmdiag.errors import InputError

RUN_FORMAT = "lvmdiag-run/1"

# Upstream keys that describe where a run came from, not how it trains: accepted and kept.
_PROVENANCE_KEYS = ("train_npz", "val_npz", "ood_npz", "output_dir", "exp_name")
# Upstream keys that this trainer reads but does not use (kept so old configs load).
_IGNORED_UPSTREAM_KEYS = ("floor_threshold",)
# Keys that may change when a run is resumed (everything else must match the saved config).
RESUMABLE_KEYS = frozenset({"epochs", "device", *_PROVENANCE_KEYS})
# What the run's numbers mean, written into config.json (key "definitions", ignored when read back) so a
# run directory documents itself. The gate departs from the upstream formula on purpose: see
# lvmdiag.train.losses for why.
DEFINITIONS = {
    "prev": "c_last, the last context vector (in a stride-1 window the chunk right before the target)",
    "anchored_output": "q' = normalize(anchor_lambda * q_raw + (1 - anchor_lambda) * c), "
                       "c = normalize(mean of the K context vectors)",
    "gate": "per sample i: 1 if Delta_i >= gate_threshold else gate_weak_weight, Delta_i = cos(t_i, c_K) - "
            "cos(t_i, c_{K-1}) (the window's own forward signal). Departs from upstream's "
            "cos(c_last, t) - cos(c_last, prev), which with prev = c_last is cos(c_last, t) - 1 <= 0 and gave "
            "every sample the weak weight",
    "loss_rank": "sum_i gate_i * InfoNCE_i / sum_i gate_i per batch (a gate-weighted mean, so its chance level "
                 "is ln(number of candidates)), tau = temperature, candidates: in-batch targets, own c_last, "
                 "n_random_negatives random training targets, optional same-article hard negative",
    "loss_margin": "sum_i gate_i * max(0, margin - cos(q', t_i) + cos(q', c_last)) / sum_i gate_i per batch",
    "loss_teacher": "mean of 1 - cos(q', t) over samples with cos(q', t) < teacher_threshold; part of the "
                    "loss in epochs 1..warmup_epochs only, logged as 0 afterwards",
    "loss": "w_rank * loss_rank + w_margin * loss_margin (+ w_teacher * loss_teacher during warmup)",
    "metrics": "cos_next = mean cos(q', t), cos_prev = mean cos(q', c_last), margin = cos_next - cos_prev, "
               "cos_anchor = mean cos(q', c); raw_* the same for q_raw (see lvmdiag.train.evaluate)",
}


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run.

    Attributes
    ----------
    context_length : K, the number of context vectors per window (the data must match).
    model_type : "transformer" or "lstm".
    d_model, nhead, num_layers, dropout : backbone size (``nhead`` is unused by the LSTM).
    dim_feedforward : transformer feed-forward width; None means ``4 * d_model`` (upstream default).
    pos_encoding : "learned" (a learned table initialised with the sinusoidal one, so positions are
        distinguishable from the first step) or "sinusoidal" (fixed). Added to every token.
    anchor_lambda : lambda in q' = normalize(lambda * q_raw + (1 - lambda) * c); the initial value if learnable.
    anchor_learnable : learn lambda as lo + (hi - lo) * sigmoid(theta) within
        [``anchor_lambda_min``, ``anchor_lambda_max``].
    w_rank, w_margin, w_teacher : loss weights (InfoNCE, prev-repel hinge, teacher pull).
    margin : m of the prev-repel hinge max(0, m - cos(q', t) + cos(q', c_last)).
    temperature : InfoNCE temperature tau.
    n_random_negatives : extra negatives per batch drawn at random from the training targets.
    hard_negatives : "none" or "same_article" (one target of another window of the same article per
        sample; needs article ids, silently absent for rows whose article has one window).
    gate_threshold, gate_weak_weight : directional gate, weight 1 if Delta_i >= threshold else the weak weight
        (see :func:`lvmdiag.train.losses.gate_weights` for Delta_i).
    teacher_threshold : teacher pull acts on samples with cos(q', t) below this (upstream 0.2).
    warmup_epochs : epochs 1..warmup_epochs use the teacher pull; "warmup_end" is logged on the next.
    batch_size, epochs, lr, weight_decay, grad_clip : optimisation (AdamW, clip by global norm; 0 = no clip).
    lr_schedule : "none", "cosine" (to ``lr * lr_min_ratio`` at the last epoch) or "step"
        (multiply by ``lr_step_gamma`` every ``lr_step_epochs``), stepped once per epoch.
    seed : the one seed for model init, shuffling, negatives, dropout and the train subsample.
    device : "cpu" (default), "cuda" or "cuda:N".
    train_eval_size : rows of the fixed train subsample evaluated every epoch.
    eval_pool_size : targets per retrieval pool (each row is ranked among these plus its own c_last).
    eval_batch_size : rows per forward pass at evaluation.
    ridge_alpha : ridge baseline penalty, as a multiple of the mean eigenvalue of X^T X; None (default)
        chooses it from 0.01 ... 100 on held-out training articles (recorded in baselines.json).
    collapse_drop : a relative one-epoch drop of val cos_next at least this large is a collapse (so is a
        non-finite val cos_next: a diverged model).
    best_metric : val metric (higher is better) that selects ``best.pt``.
    """

    context_length: int = 5
    model_type: str = "transformer"
    d_model: int = 512
    nhead: int = 8
    num_layers: int = 4
    dropout: float = 0.1
    dim_feedforward: int | None = None
    pos_encoding: str = "learned"
    anchor_lambda: float = 0.8
    anchor_learnable: bool = False
    anchor_lambda_min: float = 0.5
    anchor_lambda_max: float = 1.0
    w_rank: float = 1.0
    w_margin: float = 0.5
    w_teacher: float = 0.2
    margin: float = 0.07
    temperature: float = 0.07
    n_random_negatives: int = 0
    hard_negatives: str = "none"
    gate_threshold: float = 0.03
    gate_weak_weight: float = 0.25
    teacher_threshold: float = 0.2
    warmup_epochs: int = 2
    batch_size: int = 64
    epochs: int = 10
    lr: float = 5e-4
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    lr_schedule: str = "none"
    lr_min_ratio: float = 0.1
    lr_step_epochs: int = 5
    lr_step_gamma: float = 0.5
    seed: int = 0
    device: str = "cpu"
    train_eval_size: int = 2000
    eval_pool_size: int = 64
    eval_batch_size: int = 512
    ridge_alpha: float | None = None
    collapse_drop: float = 0.2
    best_metric: str = "cos_next"
    train_npz: str | None = None
    val_npz: str | None = None
    ood_npz: str | None = None
    output_dir: str | None = None
    exp_name: str | None = None

    def __post_init__(self) -> None:
        _validate(self)

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The config as the ``config.json`` object (upstream keys plus ``"format"`` and ``"definitions"``)."""
        out = dataclasses.asdict(self)
        out["format"] = RUN_FORMAT
        out["definitions"] = dict(DEFINITIONS)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "TrainConfig":
        """Build a config from a dict; unknown keys are an error (a typo must not be silently ignored)."""
        if not isinstance(data, dict):
            raise InputError(f"{source} must hold a JSON object; got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k not in ("format", "definitions", *_IGNORED_UPSTREAM_KEYS)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"{source} has unknown key(s) {unknown}; known keys: {sorted(known)}.")
        try:
            return cls(**data)
        except TypeError as exc:  # a wrong kind of value reaching __post_init__
            raise InputError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        """Read a config file (e.g. an upstream ``config.json``)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"config file {path} does not exist.") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"config file {path} is not valid JSON: {exc}.") from None
        return cls.from_dict(data, source=str(path))

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` applied (None values are ignored, so CLI flags left unset keep the file's value)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _validate(c: TrainConfig) -> None:
    """One validation step for every field; messages name the key and the allowed values."""

    def need(ok: bool, key: str, rule: str) -> None:
        if not ok:
            raise InputError(f"config key `{key}` {rule}; got {getattr(c, key)!r}.")

    def is_num(key: str) -> bool:
        v = getattr(c, key)
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    def is_int(key: str) -> bool:
        v = getattr(c, key)
        return isinstance(v, int) and not isinstance(v, bool)

    for key in ("context_length", "d_model", "nhead", "num_layers", "batch_size", "epochs", "eval_pool_size",
                "eval_batch_size", "train_eval_size", "lr_step_epochs"):
        need(is_int(key) and getattr(c, key) >= 1, key, "must be an integer >= 1")
    for key in ("warmup_epochs", "n_random_negatives", "seed"):
        need(is_int(key) and getattr(c, key) >= 0, key, "must be an integer >= 0")
    for key in ("dropout", "anchor_lambda", "anchor_lambda_min", "anchor_lambda_max", "w_rank", "w_margin",
                "w_teacher", "margin", "temperature", "gate_threshold", "gate_weak_weight", "teacher_threshold",
                "lr", "weight_decay", "grad_clip", "lr_min_ratio", "lr_step_gamma", "collapse_drop"):
        need(is_num(key), key, "must be a finite number")
    need(c.model_type in ("transformer", "lstm"), "model_type", "must be 'transformer' or 'lstm'")
    need(c.pos_encoding in ("learned", "sinusoidal"), "pos_encoding", "must be 'learned' or 'sinusoidal'")
    need(c.hard_negatives in ("none", "same_article"), "hard_negatives", "must be 'none' or 'same_article'")
    need(c.lr_schedule in ("none", "cosine", "step"), "lr_schedule", "must be 'none', 'cosine' or 'step'")
    need(c.best_metric in ("cos_next", "margin", "recall_at_1"), "best_metric",
         "must be 'cos_next', 'margin' or 'recall_at_1'")
    need(0.0 <= c.dropout < 1.0, "dropout", "must be in [0, 1)")
    need(c.model_type != "transformer" or c.d_model % c.nhead == 0, "d_model", f"must be divisible by nhead={c.nhead}")
    need(c.dim_feedforward is None or (is_int("dim_feedforward") and c.dim_feedforward >= 1),
         "dim_feedforward", "must be null or an integer >= 1")
    need(0.0 <= c.anchor_lambda <= 1.0, "anchor_lambda", "must be in [0, 1]")
    need(isinstance(c.anchor_learnable, bool), "anchor_learnable", "must be true or false")
    if c.anchor_learnable:
        need(0.0 <= c.anchor_lambda_min < c.anchor_lambda_max <= 1.0, "anchor_lambda_min",
             "must satisfy 0 <= anchor_lambda_min < anchor_lambda_max <= 1")
        need(c.anchor_lambda_min < c.anchor_lambda < c.anchor_lambda_max, "anchor_lambda",
             f"must lie strictly inside [{c.anchor_lambda_min}, {c.anchor_lambda_max}] when learnable")
    need(c.temperature > 0, "temperature", "must be > 0")
    need(c.lr > 0, "lr", "must be > 0")
    for key in ("w_rank", "w_margin", "w_teacher", "weight_decay", "grad_clip", "gate_weak_weight"):
        need(getattr(c, key) >= 0, key, "must be >= 0")
    need(c.ridge_alpha is None or (is_num("ridge_alpha") and c.ridge_alpha >= 0), "ridge_alpha",
         "must be null (chosen on held-out training rows) or a finite number >= 0")
    need(c.w_rank + c.w_margin + c.w_teacher > 0, "w_rank", "and w_margin, w_teacher must not all be 0")
    need(0 < c.lr_min_ratio <= 1, "lr_min_ratio", "must be in (0, 1]")
    need(0 < c.lr_step_gamma <= 1, "lr_step_gamma", "must be in (0, 1]")
    need(0 < c.collapse_drop < 1, "collapse_drop", "must be in (0, 1)")
    need(isinstance(c.device, str) and re.fullmatch(r"cpu|cuda(:\d+)?", c.device) is not None, "device",
         "must be 'cpu', 'cuda' or 'cuda:N'")
