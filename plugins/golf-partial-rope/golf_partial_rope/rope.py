"""Partial RoPE (pg_core §5.2): rotate only the first ``rope_dims`` dims of each head.

The rotation is the baseline's half-split convention on ``x[..., :rope_dims]`` with
``inv_freq = 1 / base ** (arange(0, rope_dims, 2) / rope_dims)`` (8 frequencies for 16 dims);
``x[..., rope_dims:]`` passes through. The core's ``Rotary`` implements the math; this module
only installs it with fewer dims on every attention.

PR #1394 also rescales the base NTK-style when ``seq_len > train_seq_len`` (2048); that never
triggers at its ``eval_seq_len = 2048`` and is not implemented here.
"""
from __future__ import annotations

import torch
from torch import nn

from golf_core.api import RecipeError, Rotary

#: head_dim of every record's full-size model (512 / 8); ``--tiny`` scales rope_dims against it.
REFERENCE_HEAD_DIM = 64


def scaled_rope_dims(rope_dims: int, head_dim: int, reference_head_dim: int = REFERENCE_HEAD_DIM) -> int:
    """``rope_dims`` for a model with ``head_dim``, keeping the fraction ``rope_dims / reference_head_dim``
    (rounded to an even number, at least 2): 16 of 64 -> 4 of 16."""
    dims = round(rope_dims * head_dim / reference_head_dim / 2) * 2
    return int(min(max(dims, 2), head_dim - head_dim % 2))


def install_partial_rope(model: nn.Module, rope_dims: int, fp32_angles: bool = False) -> int:
    """Replace every block's ``attn.rotary`` with ``Rotary(head_dim, base, rope_dims)``.

    :param fp32_angles: build the angle table in float32 whatever the model's dtype (#1530 on).

    :return: the number of attentions changed.
    :raises RecipeError: ``rope_dims`` odd, < 2 or larger than the head dim.
    """
    cfg = model.config
    head_dim = cfg.head_dim
    if rope_dims < 2 or rope_dims > head_dim or rope_dims % 2:
        raise RecipeError(f"options.partial-rope.rope_dims = {rope_dims}: must be even and in 2..head_dim ({head_dim})")
    n = 0
    for block in model.blocks[: cfg.num_layers]:
        block.attn.rotary = Rotary(head_dim, base=cfg.rope_base, rope_dims=rope_dims,
                                   angle_dtype=torch.float32 if fp32_angles else None)
        n += 1
    return n
