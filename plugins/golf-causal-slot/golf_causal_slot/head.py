"""The frozen, soft-capped LM head that causal SLOT optimizes through (a detached copy of the
model's tied embedding or ``lm_head``, so no gradient reaches model parameters)."""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SoftcapHead:
    """``head(h) -> cap * tanh((h @ W.T) / cap)`` with a detached ``W [V, d]`` (cap None: none)."""

    def __init__(self, weight: Tensor, softcap: Optional[float]):
        self.weight = weight.detach()
        self.softcap = None if softcap is None else float(softcap)
        self._cast: dict[torch.dtype, Tensor] = {}

    @property
    def vocab_size(self) -> int:
        """Number of logits per position."""
        return int(self.weight.shape[0])

    def __call__(self, h: Tensor) -> Tensor:
        w = self._cast.get(h.dtype)
        if w is None:
            w = self._cast[h.dtype] = self.weight.to(h.dtype)
        z = F.linear(h, w)
        return z if self.softcap is None else self.softcap * torch.tanh(z / self.softcap)


def head_of(model: nn.Module) -> SoftcapHead:
    """The head of a golf ``GPT``: ``lm_head.weight`` or the tied ``tok_emb.weight``, with
    ``config.logit_softcap``."""
    lm_head = getattr(model, "lm_head", None)
    if lm_head is not None and hasattr(lm_head, "weight"):
        weight = lm_head.weight
    elif hasattr(model, "tok_emb"):
        weight = model.tok_emb.weight
    else:
        raise ValueError(f"{type(model).__name__} has neither lm_head nor tok_emb; causal SLOT needs the output head")
    return SoftcapHead(weight, getattr(getattr(model, "config", None), "logit_softcap", None))


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """``requires_grad = False`` on every parameter for the block; the flags are restored after."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, f in flags:
            p.requires_grad_(f)


def upcast(logits: Tensor) -> Tensor:
    """Half-precision logits to float32 (as the records do); float32/float64 unchanged."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
