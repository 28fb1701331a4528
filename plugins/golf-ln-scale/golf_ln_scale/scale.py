"""LN scale (pg_core §5.2): multiply both normed block inputs by ``1/sqrt(layer_idx+1)``.

``layer_idx`` is the **physical** block index 0..L-1, so a block that runs again under depth
recurrence keeps its own factor::

    x = x + attn_scale * attn(rms_norm(x) * s)
    x = x + mlp_scale  * mlp(rms_norm(x) * s),      s = 1 / sqrt(layer_idx + 1)
"""
from __future__ import annotations

import math

from torch import nn


def ln_scale_factor(layer_idx: int) -> float:
    """``1 / sqrt(layer_idx + 1)``."""
    return 1.0 / math.sqrt(layer_idx + 1)


def install_ln_scale(model: nn.Module) -> list[float]:
    """Set ``block.ln_scale`` of every physical block from its index; return the factors."""
    out = []
    for i, block in enumerate(model.blocks[: model.config.num_layers]):
        block.ln_scale = ln_scale_factor(i)
        out.append(block.ln_scale)
    return out
