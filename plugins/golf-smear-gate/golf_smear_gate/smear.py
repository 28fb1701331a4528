"""SmearGate: an input-dependent forward-1 smear of the raw token embeddings (T6).

On the token embeddings ``e`` (before the embedding RMSNorm), for every position ``t >= 1``::

    e_t <- e_t + lam * sigmoid(w . e_t[:window]) * e_{t-1} * [ids_t != BOS]

``w`` (``smear_gate``, a ``Linear(window -> 1)``) and ``lam`` (``smear_lambda``, one scalar)
start at zero, so the gate is the identity at init. Position 0 is unchanged.

The ``[ids_t != BOS]`` factor is the BOS fix of PR #1851/#1855: in a packed stream the first
token of document N+1 would otherwise receive document N's last token. PR #1667 (merged) has
no such factor; ``bos_fix=False`` reproduces it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from golf_core import GolfError
from golf_core.api import CastedLinear

#: Parameter names of the gate: control tensors (fp32, scalar Adam group, not quantized).
CONTROL_PATTERNS = ("smear_gate", "smear_lambda")


class SmearGate(nn.Module):
    """``model.embed_transform``: ``(e [B,T,d], ids [B,T]) -> e`` with the smear above.

    :param window: leading channels of ``e_t`` the gate reads (12 in the records).
    :param bos_id: the token that starts a document (1 for the challenge's SentencePiece models).
    :param bos_fix: zero the smear into a BOS position (#1851); False is #1667's form.
    """

    def __init__(self, window: int = 12, bos_id: int = 1, bos_fix: bool = True):
        super().__init__()
        self.window = int(window)
        self.bos_id = int(bos_id)
        self.bos_fix = bool(bos_fix)
        self.smear_gate = CastedLinear(self.window, 1, zero_init=True)
        nn.init.zeros_(self.smear_gate.weight)
        self.smear_lambda = nn.Parameter(torch.zeros(1, dtype=torch.float32))

    def forward(self, e: Tensor, ids: Tensor) -> Tensor:
        """Smear ``e`` one position forward through the gate."""
        g = self.smear_lambda.to(e.dtype) * torch.sigmoid(self.smear_gate(e[:, 1:, : self.window].contiguous()))
        prev = g * e[:, :-1]
        if self.bos_fix:
            prev = prev * (ids[:, 1:] != self.bos_id).to(e.dtype).unsqueeze(-1)
        return torch.cat([e[:, :1], e[:, 1:] + prev], dim=1)

    def extra_repr(self) -> str:
        """Show the window and the BOS handling."""
        return f"window={self.window}, bos_id={self.bos_id}, bos_fix={self.bos_fix}"


def install_smear_gate(model: nn.Module, window: int = 12, bos_id: int = 1, bos_fix: bool = True) -> SmearGate:
    """Install a ``SmearGate`` as ``model.embed_transform`` and list its names in
    ``model.golf_control_patterns``."""
    d = model.tok_emb.weight.size(1)
    if not 1 <= window <= d:
        raise GolfError(f"options.smear-gate.window = {window}: must be in 1..{d} (the embedding width)")
    gate = SmearGate(window, bos_id, bos_fix).to(model.tok_emb.weight.device)
    model.embed_transform = gate
    patterns = tuple(getattr(model, "golf_control_patterns", ()) or ())
    model.golf_control_patterns = patterns + tuple(p for p in CONTROL_PATTERNS if p not in patterns)
    return gate
