"""Causal SLOT over an evaluation session: hidden states once per batch (no grad), deltas fitted
on each window's context positions only, the window's scored positions scored with them."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn

from golf_core.api import frozen, head_of

from .adamw import AdamWDeltaConfig, fit_hidden_delta, hidden_delta_logits
from .head import upcast
from .lbfgs import LBFGSConfig, fit_shared_logit_delta, fit_window_logit_deltas
from .masks import context_mask


@dataclass
class CausalSlotConfig:
    """What to fit: ``optimizer`` ``"adamw"`` (hidden delta, #1306) or ``"lbfgs"`` (logit delta,
    #1350); ``shared`` one delta per batch (the published, non-causal form); ``context_tokens``
    keep only the last N context positions; ``warm_start`` (L-BFGS) start from the previous delta."""

    optimizer: str = "adamw"
    shared: bool = False
    context_tokens: Optional[int] = None
    warm_start: bool = True
    adamw: AdamWDeltaConfig = field(default_factory=AdamWDeltaConfig)
    lbfgs: LBFGSConfig = field(default_factory=LBFGSConfig)


def causal_slot_evaluate(model: nn.Module, session: Any, cfg: Optional[CausalSlotConfig] = None, *,
                         batch_seqs: Optional[int] = None, autocast: Optional[Callable[[], Any]] = None,
                         record: Optional[Callable[[Any, torch.Tensor], None]] = None) -> None:
    """Score every window of ``session`` (this rank's share) with causal SLOT.

    :param record: called as ``record(batch, deltas)`` after each batch's fit (deltas ``[B or 1, ...]``),
        e.g. to inspect them in tests.
    """
    cfg = cfg or CausalSlotConfig()
    if cfg.optimizer not in ("adamw", "lbfgs"):
        raise ValueError(f"causal-slot: optimizer must be 'adamw' or 'lbfgs', got {cfg.optimizer!r}")
    head = head_of(model)
    ac = autocast or contextlib.nullcontext
    prev: Optional[torch.Tensor] = None
    with frozen(model):
        for batch in session.windows(batch_seqs):
            with torch.no_grad(), ac():
                hidden = model.forward_hidden(batch.x)
            hidden = hidden.detach().to(torch.promote_types(hidden.dtype, torch.float32))
            cmask = context_mask(batch.score_mask, cfg.context_tokens)
            known = batch.context_y        # the context positions' targets: already scored
            if cfg.optimizer == "adamw":
                delta = fit_hidden_delta(hidden, known, cmask, head, cfg.adamw, shared=cfg.shared)
                rows_z = hidden_delta_logits(hidden, batch.score_mask, head, delta)
            else:
                with torch.no_grad():
                    z = upcast(head(hidden))
                if cfg.shared:
                    delta = fit_shared_logit_delta(z, known, cmask, cfg.lbfgs, init=prev)[None]
                    prev = delta[0]
                else:
                    delta = fit_window_logit_deltas(z, known, cmask, cfg.lbfgs,
                                                    init=prev if cfg.warm_start else None,
                                                    warm_start=cfg.warm_start)
                    prev = delta[-1]
                rows, cols = batch.score_mask.nonzero(as_tuple=True)
                sel = torch.zeros_like(rows) if cfg.shared else rows
                rows_z = z[rows, cols] + delta[sel]
            if record is not None:
                record(batch, delta)
            session.score(batch, rows_z)
