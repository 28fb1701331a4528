"""Untied MLP weights for a repeated pass (PR #1204 ``REPEAT_UNTIE_MLP``; techniques §2b).

``UntiedPass`` is the second pass of a shared block: the same attention, norms, scales and
``resid_mix`` (the very same Parameter objects), but its own MLP weights, ``full`` (fc and
proj) or ``down`` (proj only). The untied weights are zero at build and copied from the shared
block when recurrence switches on (``prime``). Only the untied weights are registered, so the
state dict holds ``blocks.<L+k>.mlp.fc.weight`` / ``.mlp.proj.weight`` and nothing twice.

The pass runs ``Block.forward`` itself on a shallow view of the shared block whose ``mlp`` is
swapped; ``sync()`` refreshes that view after other plugins edited the shared block (an
activation, ``ln_scale``), and the plugin calls it at every phase boundary.
"""
from __future__ import annotations

import copy
from typing import Literal, Optional

import torch
from torch import Tensor, nn

from golf_core.api import CastedLinear

UntieMode = Literal["down", "full"]


class UntiedMLPWeights(nn.Module):
    """The registered untied weights of one pass: ``proj`` (``down``), or ``fc`` and ``proj`` (``full``)."""

    def __init__(self, dim: int, hidden: int, mode: UntieMode):
        super().__init__()
        self.mode = mode
        if mode == "full":
            self.fc = CastedLinear(dim, hidden)
            nn.init.zeros_(self.fc.weight)
        self.proj = CastedLinear(hidden, dim, zero_init=True)
        nn.init.zeros_(self.proj.weight)


class UntiedPass(nn.Module):
    """A repeated pass of ``shared`` (a ``Block``) with its own MLP weights.

    :param shared: the physical block this pass repeats.
    :param shared_index: its index in ``model.blocks``.
    :param mode: ``"down"`` or ``"full"``.
    """

    def __init__(self, shared: nn.Module, shared_index: int, mode: UntieMode):
        super().__init__()
        fc = shared.mlp.fc
        self.shared_index = int(shared_index)
        self.mode = mode
        self.mlp = UntiedMLPWeights(fc.in_features, fc.out_features, mode)
        self._shared_ref = (shared,)  # a tuple: not registered, so nothing is stored twice
        self._view_ref: tuple = ()
        self.sync()

    @property
    def shared(self) -> nn.Module:
        """The physical block this pass repeats."""
        return self._shared_ref[0]

    def sync(self) -> None:
        """(Re)build the view: the shared block with its MLP's weights swapped for the untied ones."""
        shared = self.shared
        mlp_view = copy.copy(shared.mlp)
        mlp_view._modules = dict(shared.mlp._modules)
        mlp_view._modules["proj"] = self.mlp.proj
        if self.mode == "full":
            mlp_view._modules["fc"] = self.mlp.fc
        view = copy.copy(shared)
        view._modules = dict(shared._modules)
        view._modules["mlp"] = mlp_view
        self._view_ref = (view,)

    @torch.no_grad()
    def prime(self) -> None:
        """Copy the shared MLP weights into the untied ones (at recurrence activation)."""
        self.mlp.proj.weight.copy_(self.shared.mlp.proj.weight)
        if self.mode == "full":
            self.mlp.fc.weight.copy_(self.shared.mlp.fc.weight)

    def forward(self, x: Tensor, x0: Tensor, cu_seqlens: Optional[Tensor] = None, max_seqlen: int = 0) -> Tensor:
        """``Block.forward`` of the shared block with the untied MLP weights (``cu_seqlens``,
        ``max_seqlen``: documents, passed through)."""
        return self._view_ref[0](x, x0, cu_seqlens, max_seqlen)

    def extra_repr(self) -> str:
        """Show which block this pass repeats."""
        return f"shared_index={self.shared_index}, mode={self.mode}"


def untied_passes(model: nn.Module) -> list[UntiedPass]:
    """Every ``UntiedPass`` in ``model.blocks``."""
    return [b for b in model.blocks if isinstance(b, UntiedPass)]
