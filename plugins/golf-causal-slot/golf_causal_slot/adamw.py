"""Causal SLOT with AdamW in hidden space (#1306's optimizer, fitted per window).

Per window (default): ``delta [B,1,d]``, loss ``sum_i mean_{k in C_i} NLL_ik``. Each delta's
gradient depends only on its own window, and AdamW is elementwise (no clipping, elementwise
weight decay), so the fit of window ``i`` is exactly the fit it would get alone.

Shared (``shared=True``, #1306 as published): one ``delta [1,1,d]`` for the batch, loss the mean
over all context positions of the batch. A window's context then contains targets that other
windows of the same batch score, so it is not causal (techniques.md §6.3).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .head import upcast


@dataclass
class AdamWDeltaConfig:
    """Inner optimization settings (defaults: #1306: 8 steps, lr 0.005, betas (0.3, 0.9), wd 1e-8, eps 1e-5, constant lr)."""

    steps: int = 8
    lr: float = 0.005
    beta1: float = 0.3
    beta2: float = 0.9
    eps: float = 1e-5
    weight_decay: float = 1e-8


def fit_hidden_delta(hidden: Tensor, targets: Tensor, ctx_mask: Tensor, head, cfg: AdamWDeltaConfig,
                     shared: bool = False) -> Tensor:
    """The fitted deltas, detached: ``[B,1,d]`` (per window) or ``[1,1,d]`` (shared).

    :param hidden: ``[B, T, d]`` final hidden states (detached).
    :param targets: ``[B, T]`` target ids.
    :param ctx_mask: bool ``[B, T]``, the loss positions (``masks.context_mask``).
    :param head: ``head(h) -> logits``.
    """
    B, T, d = hidden.shape
    delta = torch.zeros(1 if shared else B, 1, d, dtype=hidden.dtype, device=hidden.device, requires_grad=True)
    rows, cols = ctx_mask.nonzero(as_tuple=True)
    if rows.numel() == 0 or cfg.steps <= 0:
        return delta.detach()
    sel = torch.zeros_like(rows) if shared else rows
    h_sel = hidden.detach()[rows, cols]
    y_sel = targets[rows, cols]
    # per-window mean: each term weighted by 1 / (its window's context size)
    weight = 1.0 / ctx_mask.sum(dim=1).clamp_min(1).to(hidden.dtype)[rows]
    opt = torch.optim.AdamW([delta], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                            weight_decay=cfg.weight_decay)
    with torch.enable_grad():
        for _ in range(cfg.steps):
            nll = F.cross_entropy(upcast(head(h_sel + delta[sel, 0])), y_sel, reduction="none")
            loss = nll.mean() if shared else (nll * weight).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return delta.detach()


def hidden_delta_logits(hidden: Tensor, mask: Tensor, head, delta: Tensor) -> Tensor:
    """Logit rows ``[n, V]`` of the ``mask`` positions (row-major order) under ``head(hidden + delta)``."""
    rows, cols = mask.nonzero(as_tuple=True)
    sel = torch.zeros_like(rows) if delta.shape[0] == 1 else rows
    with torch.no_grad():
        return upcast(head(hidden[rows, cols] + delta[sel, 0]))


def hidden_delta_nll(hidden: Tensor, targets: Tensor, mask: Tensor, head, delta: Tensor) -> Tensor:
    """NLL (nats) of the ``mask`` positions (row-major order) under ``head(hidden + delta)``."""
    rows, cols = mask.nonzero(as_tuple=True)
    sel = torch.zeros_like(rows) if delta.shape[0] == 1 else rows
    with torch.no_grad():
        return F.cross_entropy(upcast(head(hidden[rows, cols] + delta[sel, 0])), targets[rows, cols], reduction="none")
