"""The P7 training losses, each per sample first and reduced last, so every term can be logged apart.

Notation for one window i: contexts c_{i,1..K}, c_last = c_{i,K}, target t_i, anchored output q'_i.

**"prev" is c_last**, the last context vector (in a stride-1 window, the chunk right before the
target), as in the upstream metric definitions: the prev-repel hinge pushes q' away from c_last.

**The directional gate.** Upstream wrote the gate signal as Delta = cos(c_last, t) - cos(c_last, prev);
with prev = c_last that is cos(c_last, t) - 1 <= 0, below any positive threshold for every sample, so
the gate was a constant 0.25 -- configured but never acting. Here the gate uses the window's own
forward signal, per sample::

    Delta_i = cos(t_i, c_{i,K}) - cos(t_i, c_{i,K-1})

(how much closer the target is to the last context chunk than to the one before it; positive in data
that moves forward) and ``gate_i = 1 if Delta_i >= gate_threshold else gate_weak_weight``. The gate
weighs each sample's ranking and margin terms in a weighted mean, sum_i gate_i * loss_i / sum_i gate_i:
a weak window counts ``gate_weak_weight`` times a strong one, and ``loss_rank`` stays an InfoNCE value
in nats whose chance level is ln(number of candidates), as the report reads it (a plain
mean_i gate_i * loss_i would scale it by the batch's mean gate and hide a model at chance). A gate that
gives every sample the same weight therefore changes nothing, as it should. With K = 1 there is no
c_{K-1} and every gate is 1.
Reading upstream's "prev" as c_{K-1} instead would give cos(c_K, t) - cos(c_K, c_{K-1}), which sets a
target similarity against a similarity *inside* the context (another scale: how alike adjacent chunks
are), so its sign says "the target is closer to c_last than chunks usually are", not which way the
window moves; the form above compares two similarities of the same target, so its sign is the
direction. The definition is also written into every run's config.json (``"definitions"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lvmdiag.train.config import TrainConfig

# Two unit vectors with cosine above this are the same chunk (duplicate rows must not be negatives).
_SAME_VECTOR_COS = 1.0 - 1e-6


@dataclass
class LossTerms:
    """The loss of one batch and its parts (0-d tensors), plus per-sample gate weights ``(B,)``."""

    loss: torch.Tensor
    loss_rank: torch.Tensor
    loss_margin: torch.Tensor
    loss_teacher: torch.Tensor
    gate: torch.Tensor
    teacher_violations: int


def forward_signal(contexts: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Delta_i = cos(t_i, c_{i,K}) - cos(t_i, c_{i,K-1}) per sample. ``(B, K, D), (B, D) -> (B,)``."""
    t = F.normalize(targets, dim=-1)
    c = F.normalize(contexts, dim=-1)
    if contexts.shape[1] < 2:
        return torch.full(targets.shape[:1], float("inf"), device=targets.device)
    return (c[:, -1] * t).sum(-1) - (c[:, -2] * t).sum(-1)


def gate_weights(contexts: torch.Tensor, targets: torch.Tensor, threshold: float, weak_weight: float) -> torch.Tensor:
    """Per-sample gate: 1 where the window's forward signal Delta_i >= threshold, else ``weak_weight``. ``(B,)``."""
    delta = forward_signal(contexts, targets)
    return torch.where(delta >= threshold, torch.ones_like(delta), torch.full_like(delta, weak_weight))


def info_nce(q: torch.Tensor, targets: torch.Tensor, c_last: torch.Tensor, temperature: float,
             random_negatives: torch.Tensor | None = None, hard_negatives: torch.Tensor | None = None,
             hard_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample InfoNCE: -log softmax of cos(q_i, t_i)/tau among the candidates of sample i.

    Candidates of sample i: every in-batch target t_j (positive j = i), its own c_last, the shared
    ``random_negatives`` (R, D) and its ``hard_negatives[i]`` where ``hard_mask[i]``. Candidates that are
    the same vector as t_i (duplicate chunks) are masked out rather than counted as negatives.
    Returns ``(B,)``.
    """
    b = q.shape[0]
    pos = (q * targets).sum(-1, keepdim=True)  # (B, 1)
    cols = [q @ targets.T, (q * c_last).sum(-1, keepdim=True)]  # (B, B), (B, 1)
    same = [targets @ targets.T > _SAME_VECTOR_COS, (c_last * targets).sum(-1, keepdim=True) > _SAME_VECTOR_COS]
    same[0] = same[0] & ~torch.eye(b, dtype=torch.bool, device=q.device)  # keep the positive itself
    if random_negatives is not None and random_negatives.shape[0] > 0:
        cols.append(q @ random_negatives.T)  # (B, R)
        same.append(targets @ random_negatives.T > _SAME_VECTOR_COS)
    if hard_negatives is not None:
        cols.append((q * hard_negatives).sum(-1, keepdim=True))  # (B, 1)
        absent = ~hard_mask[:, None] if hard_mask is not None else torch.zeros(b, 1, dtype=torch.bool, device=q.device)
        same.append(absent | ((hard_negatives * targets).sum(-1, keepdim=True) > _SAME_VECTOR_COS))
    logits = torch.cat(cols, dim=1) / temperature  # (B, B + 1 + R [+ 1])
    logits = logits.masked_fill(torch.cat(same, dim=1), float("-inf"))
    return torch.logsumexp(logits, dim=1) - pos[:, 0] / temperature


def prev_repel(q: torch.Tensor, targets: torch.Tensor, c_last: torch.Tensor, margin: float) -> torch.Tensor:
    """Per-sample hinge max(0, m - cos(q', t) + cos(q', c_last)). ``(B,)``."""
    return F.relu(margin - (q * targets).sum(-1) + (q * c_last).sum(-1))


def teacher_pull(q: torch.Tensor, targets: torch.Tensor, threshold: float) -> tuple[torch.Tensor, int]:
    """Mean of 1 - cos(q', t) over samples with cos(q', t) < threshold (0 when none); and their count."""
    cos = (q * targets).sum(-1)
    viol = cos < threshold
    n = int(viol.sum())
    if n == 0:
        return q.new_zeros(()), 0
    return (1.0 - cos[viol]).mean(), n


def p7_loss(q: torch.Tensor, contexts: torch.Tensor, targets: torch.Tensor, config: TrainConfig, *,
            teacher_active: bool, random_negatives: torch.Tensor | None = None,
            hard_negatives: torch.Tensor | None = None, hard_mask: torch.Tensor | None = None) -> LossTerms:
    """The P7 objective: w_rank * gated InfoNCE + w_margin * gated prev-repel (+ w_teacher * pull in warmup).

    Gated terms are gate-weighted means ``sum_i gate_i * loss_i / sum_i gate_i`` over the batch (0 when
    every gate is 0), so within a batch a weak window counts ``gate_weak_weight`` times a strong one and
    each term keeps the scale of its ungated mean. ``q`` is the anchored (unit) output. Targets, c_last
    and negatives are normalised here, so every term is a function of cosines as in the metric
    definitions, also for an encoder whose vectors are not unit length.
    """
    targets = F.normalize(targets, dim=-1)
    c_last = F.normalize(contexts[:, -1], dim=-1)  # (B, D): "prev"
    if random_negatives is not None:
        random_negatives = F.normalize(random_negatives, dim=-1)
    if hard_negatives is not None:
        hard_negatives = F.normalize(hard_negatives, dim=-1)
    gate = gate_weights(contexts, targets, config.gate_threshold, config.gate_weak_weight)  # (B,)
    rank = info_nce(q, targets, c_last, config.temperature, random_negatives, hard_negatives, hard_mask)
    weight = gate / gate.sum().clamp_min(1e-12)  # (B,), sums to 1 (all zero if every gate is 0)
    loss_rank = (weight * rank).sum()
    loss_margin = (weight * prev_repel(q, targets, c_last, config.margin)).sum()
    loss_teacher, n_viol = teacher_pull(q, targets, config.teacher_threshold)
    loss = config.w_rank * loss_rank + config.w_margin * loss_margin
    if teacher_active:
        loss = loss + config.w_teacher * loss_teacher
    return LossTerms(loss, loss_rank, loss_margin, loss_teacher, gate.detach(), n_viol)
