"""SLOT's inner optimization (techniques.md §5): a delta on the final hidden states and a logit
bias, fitted by AdamW on the CE of chosen positions, then used to score.

Per-sample (#1229): ``delta [B,1,d]`` and ``bias [B,1,V]``, zero-initialised, fp32.
Shared (#1176): ``delta [1,1,d]`` for the whole batch. The loss is the mean NLL over the masked
positions of the whole batch; ``lr_t = lr_min + (lr - lr_min) * (1 + cos(pi t / steps)) / 2``
at step ``t = 0 .. steps-1``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class SlotConfig:
    """The inner optimization's settings (defaults: #1229)."""

    steps: int = 16
    lr: float = 0.008
    lr_min: float = 0.0008
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    logit_bias: bool = True
    per_sample: bool = True


def upcast(logits: Tensor) -> Tensor:
    """Half-precision logits to float32 (as the records do); float32/float64 stay as they are."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def cosine_lr(t: int, steps: int, lr: float, lr_min: float) -> float:
    """#1229's schedule: ``lr_min + (lr - lr_min) * (1 + cos(pi * t / steps)) / 2``."""
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * t / max(steps, 1)))


def optimize_slot(hidden: Tensor, targets: Tensor, loss_mask: Tensor, head: Callable[..., Tensor],
                  vocab_size: int, cfg: Optional[SlotConfig] = None) -> tuple[Tensor, Optional[Tensor]]:
    """Fit SLOT's delta (and logit bias) on ``loss_mask``.

    :param hidden: final hidden states ``[B, T, d]`` (detached; their dtype is the compute dtype).
    :param targets: ``[B, T]`` target ids.
    :param loss_mask: bool ``[B, T]``, the positions whose NLL is minimised.
    :param head: ``head(h, bias) -> logits`` (e.g. ``SoftcapHead``); ``bias`` may be None.
    :param vocab_size: ``V``.
    :return: ``(delta, bias)``, detached: ``[B or 1, 1, d]`` and ``[B or 1, 1, V]`` (None without bias).
    """
    cfg = cfg or SlotConfig()
    B, T, d = hidden.shape
    n = B if cfg.per_sample else 1
    delta = torch.zeros(n, 1, d, dtype=hidden.dtype, device=hidden.device, requires_grad=True)
    params = [delta]
    bias = None
    if cfg.logit_bias:
        bias = torch.zeros(n, 1, vocab_size, dtype=hidden.dtype, device=hidden.device, requires_grad=True)
        params.append(bias)
    rows, cols = loss_mask.nonzero(as_tuple=True)
    if rows.numel() == 0 or cfg.steps <= 0:
        return delta.detach(), None if bias is None else bias.detach()
    sel = rows if cfg.per_sample else torch.zeros_like(rows)
    h_sel = hidden.detach()[rows, cols]
    y_sel = targets[rows, cols]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                            weight_decay=cfg.weight_decay)
    with torch.enable_grad():
        for t in range(cfg.steps):
            for g in opt.param_groups:
                g["lr"] = cosine_lr(t, cfg.steps, cfg.lr, cfg.lr_min)
            logits = head(h_sel + delta[sel, 0], None if bias is None else bias[sel, 0])
            loss = F.cross_entropy(upcast(logits), y_sel, reduction="mean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return delta.detach(), None if bias is None else bias.detach()


def slot_logits(hidden: Tensor, mask: Tensor, head: Callable[..., Tensor], delta: Tensor,
                bias: Optional[Tensor]) -> Tensor:
    """Logit rows ``[n, V]`` of the ``mask`` positions, in row-major mask order, under
    ``head(hidden + delta, bias)`` (what ``session.score`` takes)."""
    rows, cols = mask.nonzero(as_tuple=True)
    sel = rows if delta.shape[0] > 1 else torch.zeros_like(rows)
    with torch.no_grad():
        return upcast(head(hidden[rows, cols] + delta[sel, 0], None if bias is None else bias[sel, 0]))


def slot_nll(hidden: Tensor, targets: Tensor, mask: Tensor, head: Callable[..., Tensor], delta: Tensor,
             bias: Optional[Tensor]) -> Tensor:
    """Per-position NLL (nats) of the ``mask`` positions, in row-major mask order, under
    ``head(hidden + delta, bias)``."""
    rows, cols = mask.nonzero(as_tuple=True)
    sel = rows if delta.shape[0] > 1 else torch.zeros_like(rows)
    with torch.no_grad():
        logits = head(hidden[rows, cols] + delta[sel, 0], None if bias is None else bias[sel, 0])
        return F.cross_entropy(upcast(logits), targets[rows, cols], reduction="none")
