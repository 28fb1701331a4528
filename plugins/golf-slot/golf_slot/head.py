"""The frozen LM head that SLOT optimizes through: ``cap * tanh((h @ W.T + b) / cap)``.

#1229 adds its logit bias *inside* the softcap (techniques.md §5). The head is built from the
model's tied embedding (or ``lm_head``) as a detached tensor, so optimizing the delta never
puts gradients on model parameters.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SoftcapHead:
    """A detached, soft-capped linear head: ``head(h, bias=None) -> logits``.

    ``weight`` is ``[V, d]``; ``softcap`` the cap (None: no cap). Computes in the dtype of
    ``h`` (the weight is cast once). ``bias`` broadcasts against the pre-cap logits.
    """

    def __init__(self, weight: Tensor, softcap: Optional[float]):
        self.weight = weight.detach()
        self.softcap = None if softcap is None else float(softcap)
        self._cast: dict[torch.dtype, Tensor] = {}

    @property
    def vocab_size(self) -> int:
        """Number of logits per position."""
        return int(self.weight.shape[0])

    def _w(self, dtype: torch.dtype) -> Tensor:
        if dtype not in self._cast:
            self._cast[dtype] = self.weight.to(dtype)
        return self._cast[dtype]

    def __call__(self, h: Tensor, bias: Optional[Tensor] = None) -> Tensor:
        z = F.linear(h, self._w(h.dtype))
        if bias is not None:
            z = z + bias
        if self.softcap is None:
            return z
        return self.softcap * torch.tanh(z / self.softcap)


def head_of(model: nn.Module) -> SoftcapHead:
    """The head of a golf ``GPT`` (tied ``tok_emb.weight`` or ``lm_head.weight``, with
    ``config.logit_softcap``). ValueError for a model without either weight."""
    lm_head = getattr(model, "lm_head", None)
    if lm_head is not None and hasattr(lm_head, "weight"):
        weight = lm_head.weight
    elif hasattr(model, "tok_emb"):
        weight = model.tok_emb.weight
    else:
        raise ValueError(f"{type(model).__name__} has neither lm_head nor tok_emb; SLOT needs the output head")
    cap = getattr(getattr(model, "config", None), "logit_softcap", None)
    return SoftcapHead(weight, cap)


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Turn off ``requires_grad`` on every parameter for the block; restore the flags afterwards."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, f in flags:
            p.requires_grad_(f)
