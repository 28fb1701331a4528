"""Logits in float32 for causal SLOT's fits (the frozen head is ``golf_core.api.head_of``)."""
from __future__ import annotations

import torch
from torch import Tensor


def upcast(logits: Tensor) -> Tensor:
    """Half-precision logits to float32 (as the records do); float32/float64 unchanged."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
