"""Semantic anchoring: q' = normalize(lambda * q_raw + (1 - lambda) * c), lambda fixed or learnable in bounds.

``c`` is the normalised mean of the K context vectors. A learnable lambda is parameterised as
``lo + (hi - lo) * sigmoid(theta)`` so it stays inside its bounds for every value of theta and receives a
real gradient (a clamped raw parameter would stop learning the moment it touched a bound).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def context_anchor(contexts: torch.Tensor) -> torch.Tensor:
    """The anchor c = normalize(mean over the K context vectors). ``(B, K, D) -> (B, D)``."""
    return F.normalize(contexts.mean(dim=1), dim=-1)


class SemanticAnchor(nn.Module):
    """Mixes the raw prediction with the context anchor; lambda is a buffer (fixed) or bounded parameter.

    Parameters
    ----------
    lam : initial (or fixed) lambda.
    learnable : learn lambda within [lo, hi] (``lo < lam < hi`` required).
    lo, hi : bounds of a learnable lambda.
    """

    def __init__(self, lam: float, learnable: bool = False, lo: float = 0.0, hi: float = 1.0) -> None:
        super().__init__()
        self.learnable = bool(learnable)
        self.lo, self.hi = float(lo), float(hi)
        if self.learnable:
            frac = (lam - self.lo) / (self.hi - self.lo)
            self.theta = nn.Parameter(torch.tensor(math.log(frac / (1.0 - frac)), dtype=torch.float32))
        else:
            self.register_buffer("fixed_lambda", torch.tensor(float(lam), dtype=torch.float32))

    def lam(self) -> torch.Tensor:
        """The current lambda as a 0-d tensor (differentiable when learnable)."""
        if self.learnable:
            return self.lo + (self.hi - self.lo) * torch.sigmoid(self.theta)
        return self.fixed_lambda

    def forward(self, q_raw: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
        lam = self.lam()
        return F.normalize(lam * q_raw + (1.0 - lam) * anchor, dim=-1)  # (B, D)
