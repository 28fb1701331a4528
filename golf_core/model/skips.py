"""``Skips``: the U-Net skip connections between encoder and decoder positions (``model.skips``).

The default is the baseline's weighted add ``x + skip_weights[i] * skip`` with
``skip_weights [num_skips, dim]`` initialized to 1. A variant subclasses ``Skips`` keeping the
constructor signature ``(num_skips, dim)`` so that ``rebuild`` (used by ``GPT.set_schedule``)
can re-create it at another size; its parameter names should contain ``skip_weight``/
``skip_gates`` so the optimizer routes them as control tensors.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class Skips(nn.Module):
    """Weighted-add skips: ``forward(i, x, skip) = x + skip_weights[i] * skip``.

    :param num_skips: number of skip slots (``GPT`` uses ``model.schedule.num_skips``).
    :param dim: model width.
    """

    def __init__(self, num_skips: int, dim: int):
        super().__init__()
        self.num_skips = int(num_skips)
        self.dim = int(dim)
        self.skip_weights = nn.Parameter(torch.ones(self.num_skips, self.dim, dtype=torch.float32))

    def forward(self, i: int, x: Tensor, skip: Tensor) -> Tensor:
        """Merge the popped encoder output ``skip`` into the stream ``x`` at decoder position ``i``."""
        return x + self.skip_weights[i].to(x.dtype)[None, None, :] * skip

    def rebuild(self, num_skips: int) -> "Skips":
        """A fresh module of the same type with ``num_skips`` slots, on this module's device."""
        return type(self)(num_skips, self.dim).to(self.skip_weights.device)

    def extra_repr(self) -> str:
        """Show the slot count in ``print(model)``."""
        return f"num_skips={self.num_skips}, dim={self.dim}"
