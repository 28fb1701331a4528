"""``Block``: one transformer layer with the baseline's residual mix and the ``ln_scale`` seam.

::

    x   = resid_mix[0]*x + resid_mix[1]*x0             # mix_input
    x   = x + attn_scale * attn(rms_norm(x) * ln_scale)  # attn_branch
    x   = x + mlp_scale  * mlp(rms_norm(x) * ln_scale)   # mlp_branch

``ln_scale`` is 1.0 in the baseline (the multiply is skipped); PR #1394 sets
``1/sqrt(layer_idx+1)`` from the *physical* index, so a looped block keeps its own factor.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from golf_core.model.layers import RMSNorm
from golf_core.model.mlp import MLP
from golf_core.model.self_attention import CausalSelfAttention


class Block(nn.Module):
    """One layer: ``attn`` then ``mlp``, each pre-normed, scaled and added to the stream.

    :param layer_idx: physical index in ``model.blocks`` (kept as ``self.layer_idx``).
    """

    def __init__(self, dim: int, num_heads: int, num_kv_heads: int, mlp_hidden: int,
                 rope_base: float, qk_gain_init: float, layer_idx: int = 0):
        super().__init__()
        self.layer_idx = layer_idx
        self.attn_norm = RMSNorm()
        self.mlp_norm = RMSNorm()
        self.attn = CausalSelfAttention(dim, num_heads, num_kv_heads, rope_base, qk_gain_init)
        self.mlp = MLP(dim, mlp_hidden)
        self.attn_scale = nn.Parameter(torch.ones(dim, dtype=torch.float32))
        self.mlp_scale = nn.Parameter(torch.ones(dim, dtype=torch.float32))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(dim), torch.zeros(dim))).float())
        self.ln_scale: float = 1.0

    def mix_input(self, x: Tensor, x0: Tensor) -> Tensor:
        """``resid_mix[0]*x + resid_mix[1]*x0``: the block's input stream."""
        mix = self.resid_mix.to(x.dtype)
        return mix[0][None, None, :] * x + mix[1][None, None, :] * x0

    def attn_branch(self, x: Tensor, cu_seqlens: Optional[Tensor] = None, max_seqlen: int = 0) -> Tensor:
        """``attn_scale * attn(attn_norm(x) * ln_scale)``: what attention adds to the stream
        (``cu_seqlens``/``max_seqlen``: documents, passed to the attention)."""
        h = self.attn_norm(x)
        if self.ln_scale != 1.0:
            h = h * self.ln_scale
        a = self.attn(h) if cu_seqlens is None else self.attn(h, cu_seqlens, max_seqlen)
        return self.attn_scale.to(x.dtype)[None, None, :] * a

    def mlp_branch(self, x: Tensor) -> Tensor:
        """``mlp_scale * mlp(mlp_norm(x) * ln_scale)``: what the MLP adds to the stream."""
        h = self.mlp_norm(x)
        if self.ln_scale != 1.0:
            h = h * self.ln_scale
        return self.mlp_scale.to(x.dtype)[None, None, :] * self.mlp(h)

    def forward(self, x: Tensor, x0: Tensor, cu_seqlens: Optional[Tensor] = None, max_seqlen: int = 0) -> Tensor:
        """Apply the layer to the stream ``x`` given the embedding stream ``x0`` (both ``[B,T,d]``);
        ``cu_seqlens``/``max_seqlen`` (documents) go to the attention."""
        x = self.mix_input(x, x0)
        x = x + self.attn_branch(x, cu_seqlens, max_seqlen)
        return x + self.mlp_branch(x)
