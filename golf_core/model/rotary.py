"""Rotary position embedding with the baseline's half-split convention (pg_core §4.2, §5.2).

For a head vector ``x`` whose first ``rope_dims`` dimensions are rotated, with
``half = rope_dims // 2``, ``x1 = x[..., :half]``, ``x2 = x[..., half:rope_dims]`` and the angle
``theta_j = t * inv_freq[j]``, ``inv_freq = 1 / base ** (arange(0, rope_dims, 2) / rope_dims)``::

    out = cat(x1*cos + x2*sin, -x1*sin + x2*cos, x[..., rope_dims:])

(as complex numbers: ``(x1 + i*x2) * exp(-i*theta)``). ``rope_dims == head_dim`` is the
baseline's full RoPE; PR #1394's partial RoPE is ``rope_dims=16`` of 64.

The angle table is computed from the ``inv_freq`` buffer in the buffer's dtype, exactly as the
records do. ``prepare_for_device`` casts buffers with the rest of the model (the records call
``model.bfloat16()``), so on the GPU positions and angles are rounded to bf16 like the records';
on CPU everything stays float32. From PR #1530 on the records build the table in float32
(positions exact, from the bf16-rounded ``inv_freq``) and cast it to the activations' dtype:
``angle_dtype=torch.float32``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from golf_core.errors import RecipeError


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor, rope_dims: int) -> Tensor:
    """Rotate the first ``rope_dims`` dims of ``x`` (last axis) by the half-split convention.

    :param x: ``[..., head_dim]``.
    :param cos: broadcastable to ``[..., rope_dims // 2]``; ``sin`` likewise.
    :return: a tensor shaped like ``x``; dims past ``rope_dims`` pass through unchanged.
    """
    head_dim = x.size(-1)
    half = rope_dims // 2
    if rope_dims == head_dim:
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat((x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos), dim=-1)
    x1, x2, rest = x[..., :half], x[..., half:rope_dims], x[..., rope_dims:]
    return torch.cat((x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos, rest), dim=-1)


class Rotary(nn.Module):
    """The ``block.attn.rotary`` seam: ``forward(q, k) -> (q, k)`` on ``[B, T, heads, head_dim]``.

    :param head_dim: size of one head.
    :param base: RoPE base (``[model] rope_base``, 10000).
    :param rope_dims: how many leading dims of each head rotate (even, ``<= head_dim``);
        ``None`` (default) rotates all of them, as the baseline does.
    :param angle_dtype: dtype of the positions and angles; ``None`` (default): ``inv_freq``'s.
    """

    def __init__(self, head_dim: int, base: float = 10000.0, rope_dims: Optional[int] = None,
                 angle_dtype: Optional[torch.dtype] = None):
        super().__init__()
        rope_dims = head_dim if rope_dims is None else int(rope_dims)
        if rope_dims <= 0 or rope_dims > head_dim or rope_dims % 2:
            raise RecipeError(f"rope_dims {rope_dims} must be even and in 2..head_dim ({head_dim})")
        self.head_dim = head_dim
        self.base = float(base)
        self.rope_dims = rope_dims
        self.angle_dtype = angle_dtype  # a plain attribute: model.bfloat16() / .double() leave it
        inv_freq = 1.0 / (self.base ** (torch.arange(0, rope_dims, 2, dtype=torch.float32) / rope_dims))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def cos_sin(self, seq_len: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Angle tables ``cos, sin`` of shape ``[seq_len, rope_dims // 2]`` cast to ``dtype``.

        Positions and products are computed in ``inv_freq``'s dtype (the records' behaviour), or
        in ``angle_dtype`` when set (#1530 on).
        """
        inv_freq = self.inv_freq if self.angle_dtype is None else self.inv_freq.to(self.angle_dtype)
        t = torch.arange(seq_len, device=inv_freq.device, dtype=inv_freq.dtype)
        freqs = torch.outer(t, inv_freq)
        return freqs.cos().to(dtype), freqs.sin().to(dtype)

    def forward(self, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        """Rotate ``q`` ``[B, T, H, D]`` and ``k`` ``[B, T, Hkv, D]`` by their position ``t`` (axis 1)."""
        cos, sin = self.cos_sin(q.size(1), q.dtype)
        cos, sin = cos[None, :, None, :], sin[None, :, None, :]
        return apply_rotary(q, cos, sin, self.rope_dims), apply_rotary(k, cos, sin, self.rope_dims)

    def extra_repr(self) -> str:
        """Show the rotated dims and base in ``print(model)``."""
        extra = "" if self.angle_dtype is None else f", angle_dtype={self.angle_dtype}"
        return f"head_dim={self.head_dim}, rope_dims={self.rope_dims}, base={self.base:g}{extra}"
