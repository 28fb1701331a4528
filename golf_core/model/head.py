"""A frozen copy of a model's output head, for eval-time adapters that optimize through it.

SLOT and causal SLOT fit a delta on the final hidden state (or the logits) while the model's
weights stay fixed: ``head_of(model)`` gives ``cap * tanh((h @ W.T + b) / cap)`` over a
*detached* copy of the tied embedding or ``lm_head`` (so no gradient reaches a parameter), and
the optional bias is added inside the softcap, as #1229 does.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SoftcapHead:
    """A detached, soft-capped linear head: ``head(h, bias=None) -> logits``.

    :param weight: ``[V, d]``; detached, and cast once per dtype of ``h``.
    :param softcap: the cap (None: no cap); ``bias`` broadcasts against the pre-cap logits.
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
    """The head of a golf ``GPT``: ``lm_head.weight``, else the tied ``tok_emb.weight``, with
    ``config.logit_softcap``. ValueError for a model with neither weight."""
    lm_head = getattr(model, "lm_head", None)
    if lm_head is not None and hasattr(lm_head, "weight"):
        weight = lm_head.weight
    elif hasattr(model, "tok_emb"):
        weight = model.tok_emb.weight
    else:
        raise ValueError(f"{type(model).__name__} has neither lm_head nor tok_emb: no output head to optimize through")
    return SoftcapHead(weight, getattr(getattr(model, "config", None), "logit_softcap", None))
