"""Orthogonal init of every ``nn.Linear`` whose two dimensions are both >= ``min_dim``.

The rule of the records (openai/parameter-golf, e.g. PR #1394 ``GPT._init_weights``): walk
``model.named_modules()`` in order; a linear marked as a zero-init output projection stays zero;
any other linear with ``out_features >= 64`` and ``in_features >= 64`` gets
``torch.nn.init.orthogonal_(weight, gain)``. ``orthogonal_`` draws one standard-normal matrix per
weight from the global torch generator, so the module order fixes which weights a seed gives.
In golf's GPT the eligible layers are ``c_q, c_k, c_v, mlp.fc`` of every block, in block order.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import nn


def is_zero_init(module: nn.Module) -> bool:
    """True for a linear marked as a zero-init output projection (golf's ``zero_init``, the
    records' ``_zero_init``)."""
    return bool(getattr(module, "zero_init", False) or getattr(module, "_zero_init", False))


def eligible_linears(model: nn.Module, min_dim: int = 64) -> Iterator[tuple[str, nn.Linear]]:
    """``(name, linear)`` for every linear that :func:`orthogonal_init` re-initializes, in
    ``named_modules()`` order (the order of the RNG draws)."""
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or is_zero_init(module):
            continue
        w = module.weight
        if w.ndim == 2 and w.shape[0] >= min_dim and w.shape[1] >= min_dim:
            yield name, module


def orthogonal_init(model: nn.Module, min_dim: int = 64, gain: float = 1.0) -> list[str]:
    """Re-initialize every eligible linear with ``orthogonal_(weight, gain)`` in place, zero the
    zero-init output projections, and return the names of the orthogonalized modules.

    On the meta device (parameter counting) nothing is drawn and the names are still returned.
    """
    names = []
    with torch.no_grad():
        for name, module in model.named_modules():
            if not isinstance(module, nn.Linear):
                continue
            w = module.weight
            if is_zero_init(module):
                if not w.is_meta:
                    w.zero_()
            elif w.ndim == 2 and w.shape[0] >= min_dim and w.shape[1] >= min_dim:
                if not w.is_meta:
                    nn.init.orthogonal_(w, gain=gain)
                names.append(name)
    return names
