"""The feed-forward block: ``proj(activation(fc(x)))`` with the ``activation`` seam (pg_core §4.2).

A plugin may also set ``mlp.fused``: a module ``(x, w1, w2) -> out`` computing the same MLP in
one fused kernel (weights already in ``x``'s dtype); ``forward`` uses it in training only, so
evaluation and calibration (forward hooks on ``fc``/``proj``) keep the plain path.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from golf_core.model.layers import CastedLinear


class ReLUSquared(nn.Module):
    """The baseline's activation ``relu(x)**2`` (default ``block.mlp.activation``)."""

    def forward(self, x: Tensor) -> Tensor:
        """``relu(x).square()``."""
        return torch.relu(x).square()


class MLP(nn.Module):
    """``fc: dim -> hidden``, ``activation`` (seam), ``proj: hidden -> dim`` (zero-init).

    :param dim: model width.
    :param hidden: hidden width, ``int(mlp_mult * dim)``.
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc = CastedLinear(dim, hidden)
        self.proj = CastedLinear(hidden, dim, zero_init=True)
        self.activation: nn.Module = ReLUSquared()
        self.fused: Optional[nn.Module] = None

    def forward(self, x: Tensor) -> Tensor:
        """Apply the MLP to ``x [..., dim]`` (through ``fused`` when set and training)."""
        if self.fused is not None and self.training:
            return self.fused(x, self.fc.weight.to(x.dtype), self.proj.weight.to(x.dtype))
        return self.proj(self.activation(self.fc(x)))
