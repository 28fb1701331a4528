"""Which positions of a window causal SLOT may fit on: its context, i.e. the positions before its
first scored position, whose targets earlier windows scored (techniques.md §6).

For a window scoring positions ``[s, wl)``, position ``k < s`` predicts target ``ws + k``, which
precedes the window's first scored target ``ws + s``; every such target is scored by an earlier
window. The first window of the stream (``s = 0``) has no context.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def first_scored(score_mask: Tensor) -> Tensor:
    """First scored position ``s`` of every row of a bool ``[B, T]`` mask (``T`` for a row scoring nothing)."""
    B, T = score_mask.shape
    pos = torch.arange(T, device=score_mask.device).expand(B, T)
    return torch.where(score_mask, pos, torch.full_like(pos, T)).min(dim=1).values


def context_mask(score_mask: Tensor, context_tokens: Optional[int] = None) -> Tensor:
    """Bool ``[B, T]``: positions ``k < s`` of each row, restricted to the last ``context_tokens``
    of them when given (``[s - context_tokens, s)``; #1350 used 64: positions ``[T-128, T-64)``)."""
    B, T = score_mask.shape
    s = first_scored(score_mask)[:, None]
    pos = torch.arange(T, device=score_mask.device)[None, :]
    m = pos < s
    if context_tokens is not None:
        m &= pos >= s - int(context_tokens)
    return m
