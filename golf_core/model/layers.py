"""The two parameter-light layers every part of the baseline is built from (pg_core §4.2).

``CastedLinear`` keeps its weight in float32 and casts it to the input's dtype at matmul time;
``RMSNorm`` is ``F.rms_norm`` over the last dimension with no learned weight and the default eps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def rms_norm(x: Tensor) -> Tensor:
    """RMS-normalize over the last dimension, no weight, ``eps=None`` (torch's dtype epsilon)."""
    return F.rms_norm(x, (x.size(-1),))


class RMSNorm(nn.Module):
    """Weightless RMSNorm as a module, so that forward hooks can observe its output
    (GPTQ collects the tied embedding's Hessian from ``model.final_norm``)."""

    def forward(self, x: Tensor) -> Tensor:
        """Normalize ``x`` over its last dimension."""
        return rms_norm(x)


class CastedLinear(nn.Linear):
    """Bias-free-by-default ``nn.Linear`` whose (float32) weight is cast to the input dtype.

    ``prepare_for_device`` keeps these weights in float32 while the body runs in bf16, as the
    baseline does. ``zero_init=True`` marks output projections that ``GPT`` zeroes at init.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False, zero_init: bool = False):
        super().__init__(in_features, out_features, bias=bias)
        self.zero_init = zero_init

    def forward(self, x: Tensor) -> Tensor:
        """``x @ W.T (+ b)`` with ``W`` (and ``b``) cast to ``x.dtype``."""
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, self.weight.to(x.dtype), bias)
