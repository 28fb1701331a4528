"""Sigmoid-gated U-Net skips (pg_core §5.2)::

    x = lerp(skip_weights[i] * skip, x, sigmoid(skip_gates[i]))
      = g * x + (1 - g) * skip_weights[i] * skip,        g = sigmoid(skip_gates[i])

``skip_weights [n, d]`` start at 1 and ``skip_gates [n, d]`` at 0 (g = 0.5). Both names match
the control-tensor patterns (``skip_weights``, ``skip_gates``), so they stay float32 and go to
the scalar Adam group.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from golf_core.api import Skips


class SigmoidGatedSkips(Skips):
    """The ``model.skips`` seam with a per-channel sigmoid gate between stream and skip.

    Keeps ``Skips``' constructor ``(num_skips, dim)`` so ``GPT.set_schedule`` can rebuild it
    at another size (depth recurrence).
    """

    def __init__(self, num_skips: int, dim: int):
        super().__init__(num_skips, dim)
        self.skip_gates = nn.Parameter(torch.zeros(self.num_skips, self.dim, dtype=torch.float32))

    def forward(self, i: int, x: Tensor, skip: Tensor) -> Tensor:
        """``lerp(skip_weights[i] * skip, x, sigmoid(skip_gates[i]))``."""
        w = self.skip_weights[i].to(x.dtype)[None, None, :]
        g = torch.sigmoid(self.skip_gates[i].to(x.dtype))[None, None, :]
        return torch.lerp(w * skip, x, g)


#: The control-tensor pattern of the gates, and the model attribute the core reads extra patterns from.
GATE_PATTERN = "skip_gates"
CONTROL_PATTERNS_ATTR = "golf_control_patterns"


def install_skip_gates(model: nn.Module) -> SigmoidGatedSkips:
    """Replace ``model.skips`` with fresh ``SigmoidGatedSkips`` of the same slot count, and list
    ``skip_gates`` in ``model.golf_control_patterns`` (fp32, scalar Adam, never quantized)."""
    patterns = tuple(getattr(model, CONTROL_PATTERNS_ATTR, ()) or ())
    if GATE_PATTERN not in patterns:
        setattr(model, CONTROL_PATTERNS_ATTR, (*patterns, GATE_PATTERN))
    old = model.skips
    device = old.skip_weights.device if hasattr(old, "skip_weights") else None
    model.skips = SigmoidGatedSkips(old.num_skips, old.dim)
    if device is not None:
        model.skips.to(device)
    return model.skips
