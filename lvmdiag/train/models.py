"""The P7 rankers: a transformer and an LSTM over the K context vectors, each followed by anchoring.

Both map ``(B, K, D)`` contexts to a unit-norm raw prediction ``q_raw`` ``(B, D)``; the wrapping
:class:`P7Ranker` applies semantic anchoring and returns ``(q, q_raw)`` with q the anchored output q'.
The transformer adds a position embedding to every token after the input projection: without it
self-attention is permutation-invariant and the model could not tell the last chunk from the first.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lvmdiag.train.anchoring import SemanticAnchor, context_anchor
from lvmdiag.train.config import TrainConfig


def sinusoidal_table(k: int, d: int) -> torch.Tensor:
    """The (K, d) sinusoidal position table of Vaswani et al. (2017)."""
    pos = torch.arange(k, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(k, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return table


class TransformerBackbone(nn.Module):
    """Input projection + position embedding + pre-norm transformer encoder + head on the last token."""

    def __init__(self, d_in: int, k: int, d_model: int, nhead: int, num_layers: int, dropout: float,
                 dim_feedforward: int | None, pos_encoding: str) -> None:
        super().__init__()
        self.proj = nn.Linear(d_in, d_model)
        # Scaled to the size of the projected content at init: a unit input through nn.Linear's default
        # init gives per-feature rms ~ sqrt(2 / (3 d_in)) (weight + bias), the raw table has rms 1/sqrt(2).
        # Unscaled, position would be ~18x the content (d_in 384) and, after the pre-norm LayerNorm, the
        # content would be a few percent of every token, which measurably slows the first epochs.
        table = sinusoidal_table(k, d_model) * (2.0 / math.sqrt(3.0 * d_in))
        if pos_encoding == "learned":
            self.pos = nn.Parameter(table.clone())
        else:
            self.register_buffer("pos", table)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward or 4 * d_model, dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, d_in)

    def forward(self, contexts: torch.Tensor) -> torch.Tensor:
        h = self.proj(contexts) + self.pos  # (B, K, d_model), position added to every token
        h = self.encoder(h)  # (B, K, d_model)
        return F.normalize(self.head(self.norm(h[:, -1])), dim=-1)  # (B, D) read out at the last chunk


class LSTMBackbone(nn.Module):
    """Input projection + LSTM + head on the final hidden state (order is intrinsic to the recurrence)."""

    def __init__(self, d_in: int, d_model: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.proj = nn.Linear(d_in, d_model)
        self.lstm = nn.LSTM(d_model, d_model, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(d_model, d_in)

    def forward(self, contexts: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.proj(contexts))  # (B, K, d_model)
        return F.normalize(self.head(h[:, -1]), dim=-1)  # (B, D)


class P7Ranker(nn.Module):
    """Backbone + semantic anchoring. ``forward(contexts) -> (q, q_raw)``, both ``(B, D)`` unit vectors."""

    def __init__(self, backbone: nn.Module, anchor: SemanticAnchor) -> None:
        super().__init__()
        self.backbone = backbone
        self.anchor = anchor

    def forward(self, contexts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q_raw = self.backbone(contexts)  # (B, D)
        return self.anchor(q_raw, context_anchor(contexts)), q_raw


def build_model(config: TrainConfig, d_in: int) -> P7Ranker:
    """The ranker described by ``config`` for ``d_in``-dimensional vectors (uses the current torch RNG)."""
    if config.model_type == "transformer":
        backbone: nn.Module = TransformerBackbone(d_in, config.context_length, config.d_model, config.nhead,
                                                  config.num_layers, config.dropout, config.dim_feedforward,
                                                  config.pos_encoding)
    else:
        backbone = LSTMBackbone(d_in, config.d_model, config.num_layers, config.dropout)
    anchor = SemanticAnchor(config.anchor_lambda, config.anchor_learnable, config.anchor_lambda_min,
                            config.anchor_lambda_max)
    return P7Ranker(backbone, anchor)


def model_config(config: TrainConfig, d_in: int) -> dict[str, Any]:
    """The upstream ``model_config`` block of a checkpoint, plus the input dimension and K."""
    return {
        "model_type": config.model_type, "d_model": config.d_model, "nhead": config.nhead,
        "num_layers": config.num_layers, "dropout": config.dropout,
        "anchor_lambda_init": config.anchor_lambda, "anchor_lambda_learnable": config.anchor_learnable,
        "input_dim": int(d_in), "context_length": config.context_length,
    }


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
