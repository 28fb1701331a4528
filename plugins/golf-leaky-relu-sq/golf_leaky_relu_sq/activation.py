"""LeakyReLU squared (pg_core §5.2): ``leaky_relu(x, slope) ** 2``.

With slope 0.5 a negative input ``x`` gives ``0.25 x**2`` instead of relu²'s 0.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def leaky_relu_squared(x: Tensor, negative_slope: float = 0.5) -> Tensor:
    """``leaky_relu(x, negative_slope).square()``."""
    return F.leaky_relu(x, negative_slope=negative_slope).square()


class LeakyReLUSquared(nn.Module):
    """The ``block.mlp.activation`` seam filled with ``leaky_relu(x, slope)**2``."""

    def __init__(self, negative_slope: float = 0.5):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        """See ``leaky_relu_squared``."""
        return leaky_relu_squared(x, self.negative_slope)

    def extra_repr(self) -> str:
        """Show the slope in ``print(model)``."""
        return f"negative_slope={self.negative_slope:g}"


def install_leaky_relu_sq(model: nn.Module, negative_slope: float = 0.5) -> int:
    """Set every physical block's ``mlp.activation``; return how many were set."""
    n = 0
    for block in model.blocks[: model.config.num_layers]:
        block.mlp.activation = LeakyReLUSquared(negative_slope)
        n += 1
    return n
