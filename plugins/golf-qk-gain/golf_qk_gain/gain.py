"""Per-head query gain: set the initial value of every attention's ``q_gain`` (techniques §1).

The attention computes ``q = rope(rms_norm(q)) * q_gain[h]`` (k is not scaled). With unit-RMS q
and k, ``|q.k|/sqrt(D) <= sqrt(D)``, so ``q_gain`` is the layer's only inverse-temperature knob;
it is a learnable ``Parameter[H]`` routed to the scalar Adam group (name contains ``q_gain``).
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


def attention_modules(model: nn.Module) -> Iterable[nn.Module]:
    """Every module of ``model`` that carries a ``q_gain`` parameter (one per attention)."""
    for module in model.modules():
        if isinstance(getattr(module, "q_gain", None), nn.Parameter):
            yield module


def set_qk_gain(model: nn.Module, init: float) -> int:
    """Fill every attention's ``q_gain`` with ``init`` in place; return how many were set.

    The Parameter objects are kept (optimizers and dtype layout are unaffected).
    """
    n = 0
    with torch.no_grad():
        for attn in attention_modules(model):
            attn.q_gain.fill_(float(init))
            n += 1
    return n
