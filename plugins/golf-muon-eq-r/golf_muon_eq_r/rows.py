"""MuonEq-R's row normalization (arXiv 2603.28254, row variant; #1394): each row of the Nesterov
update to unit L2 norm (norm over the fan-in, in float32, floored at 1e-7) before Newton-Schulz.

It hooks into the core Muon as a preconditioner (``Muon.preconditioners``) that reads the group
option ``row_normalize``, so it can be switched per group and survives in checkpoints as a
plain option.
"""
from __future__ import annotations

import torch
from torch import Tensor

#: Floor of the per-row L2 norm.
ROW_NORM_EPS: float = 1e-7


def row_normalize(g: Tensor, eps: float = ROW_NORM_EPS) -> Tensor:
    """Scale each row of ``g`` to unit L2 norm, floored at ``eps``.

    The norm is taken in float32 (as in the record), or in ``g``'s dtype when that is wider, and
    cast to ``g``'s dtype before the division: a bf16 update (the banked Muon's bf16 momentum,
    #1530 ``Muon.step``: ``update / rn.to(update.dtype)``) is divided in bf16 and stays bf16.
    """
    wide = g if g.dtype in (torch.float32, torch.float64) else g.float()
    return g / wide.norm(dim=-1, keepdim=True).clamp_min(eps).to(g.dtype)


def precondition_rows(g: Tensor, p: Tensor, group: dict) -> Tensor:
    """The Muon preconditioner: :func:`row_normalize` where the group's ``row_normalize`` is on."""
    return row_normalize(g) if group.get("row_normalize", False) else g


def install_row_normalization(muon: "torch.optim.Optimizer") -> None:
    """Add :func:`precondition_rows` to a core Muon's preconditioners (once)."""
    if precondition_rows not in muon.preconditioners:
        muon.preconditioners.append(precondition_rows)
