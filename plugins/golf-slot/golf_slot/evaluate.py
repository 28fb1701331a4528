"""SLOT over an evaluation session: for every batch of windows, hidden states once (no grad),
fit delta/bias on the loss positions, score the window's scored positions with them."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Optional

import torch
from torch import nn

from golf_core.api import frozen, head_of

from .slot import SlotConfig, optimize_slot, slot_logits


def loss_mask_for(batch: Any, mask: str) -> torch.Tensor:
    """``"scored"``: the batch's ``score_mask`` (#1229); ``"all"``: every real (non-padding)
    position of each window (standard SLOT, #1176 without its padding)."""
    if mask == "scored":
        return batch.score_mask
    if mask == "all":
        return (batch.target_pos >= 0).to(batch.score_mask.device)
    raise ValueError(f"slot: mask must be 'scored' or 'all', got {mask!r}")


def slot_evaluate(model: nn.Module, session: Any, cfg: Optional[SlotConfig] = None, *, mask: str = "scored",
                  batch_seqs: Optional[int] = None, autocast: Optional[Callable[[], Any]] = None) -> None:
    """Score every window of ``session`` with SLOT (this rank's share).

    :param model: has ``forward_hidden`` and a tied embedding or ``lm_head`` (see ``head_of``).
    :param session: a ``golf_core.eval.EvalSession``-like object (``windows``, ``score``).
    :param autocast: a context-manager factory for the hidden-state forward (e.g. ``ctx.autocast``).
    """
    cfg = cfg or SlotConfig()
    head = head_of(model)
    ac = autocast or contextlib.nullcontext
    with frozen(model):
        for batch in session.windows(batch_seqs):
            with torch.no_grad(), ac():
                hidden = model.forward_hidden(batch.x)
            hidden = hidden.detach().to(torch.promote_types(hidden.dtype, torch.float32))
            # #1229 fits on the targets it then scores: reading batch.y here, before the batch is
            # scored, is recorded by the session (golf check fails it)
            delta, bias = optimize_slot(hidden, batch.y, loss_mask_for(batch, mask), head, head.vocab_size, cfg)
            session.score(batch, slot_logits(hidden, batch.score_mask, head, delta, bias))
