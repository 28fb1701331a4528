"""Exclusive self attention (XSA, pg_core §5.2): remove from each head's attention output
its component along the normalized value vector of the same position in the head's own KV
group.

For query head ``h`` reading KV head ``g = h // (H // Hkv)`` at position ``t``::

    vn = v[t, g] / ||v[t, g]||
    y[t, h] <- y[t, h] - (y[t, h] . vn) vn

so the output is orthogonal to ``vn``. No parameters.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def exclusive_self_attention(y: Tensor, v: Tensor) -> Tensor:
    """Apply XSA to the attention output.

    :param y: ``[B, T, H, D]`` attention output (before the output projection).
    :param v: ``[B, T, Hkv, D]`` values; query head ``h`` belongs to KV group ``h // (H // Hkv)``.
    :return: ``y`` with each head's component along its own position's normalized value removed.
    """
    B, T, H, D = y.shape
    hkv = v.size(-2)
    yg = y.reshape(B, T, hkv, H // hkv, D)
    vn = F.normalize(v, dim=-1).unsqueeze(-2)
    yg = yg - (yg * vn).sum(dim=-1, keepdim=True) * vn
    return yg.reshape(B, T, H, D)


class ExclusiveSelfAttention(nn.Module):
    """The ``block.attn.out_transform`` seam filled with XSA: ``forward(y, v) -> y``."""

    def forward(self, y: Tensor, v: Tensor) -> Tensor:
        """See ``exclusive_self_attention``."""
        return exclusive_self_attention(y, v)


def xsa_layers(num_layers: int, last_n: int) -> list[int]:
    """Physical block indices that get XSA: the last ``last_n`` (all when ``last_n >= num_layers``)."""
    return list(range(max(0, num_layers - last_n), num_layers))


def install_xsa(model: nn.Module, last_n: int) -> list[int]:
    """Set ``out_transform`` of the last ``last_n`` physical blocks to XSA; return their indices."""
    num_layers = model.config.num_layers
    layers = xsa_layers(num_layers, last_n)
    for i in layers:
        model.blocks[i].attn.out_transform = ExclusiveSelfAttention()
    return layers
