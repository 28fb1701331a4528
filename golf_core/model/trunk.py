"""``Trunk``: how the blocks of a layout are run over the residual stream (``model.trunk``).

The default is the baseline's single stream with U-Net skips::

    for i in encoder:  x = blocks[i](x, x0); push(x)
    for j, i in enumerate(decoder):
        if j < skips.num_skips and stack: x = skips(j, x, pop())
        x = blocks[i](x, x0)

A variant (parallel residual lanes) subclasses ``Trunk`` and overrides ``forward``; it calls
the block's pieces (``block.mix_input``, ``block.attn_branch``, ``block.mlp_branch``) where it
needs them apart. Parameters it owns live on the trunk module (``trunk.<name>``).
"""
from __future__ import annotations

from typing import Optional, Sequence

from torch import Tensor, nn


class Trunk(nn.Module):
    """The single-stream trunk: blocks in layout order, LIFO U-Net skips (pg_core §4.2)."""

    def forward(self, x: Tensor, x0: Tensor, blocks: nn.ModuleList, skips: nn.Module,
                encoder: Sequence[int], decoder: Sequence[int], cu_seqlens: Optional[Tensor] = None,
                max_seqlen: int = 0) -> Tensor:
        """Run ``encoder`` then ``decoder`` block indices over ``x [B,T,d]`` (``x0``: the
        embedding stream; ``cu_seqlens``/``max_seqlen``: documents, for every block's attention);
        returns the stream before the final norm."""
        stack: list[Tensor] = []
        for i in encoder:
            x = blocks[i](x, x0, cu_seqlens, max_seqlen)
            stack.append(x)
        num_skips = skips.num_skips
        for j, i in enumerate(decoder):
            if j < num_skips and stack:
                x = skips(j, x, stack.pop())
            x = blocks[i](x, x0, cu_seqlens, max_seqlen)
        return x
