"""Causal SLOT with L-BFGS in logit space (#1350's optimizer), run separately for every window.

``z = compute_logits(H)`` (post-softcap, no grad); a logit delta ``delta [V]`` minimises the mean
CE of ``z + delta`` over the window's context positions, with ``torch.optim.LBFGS(lr=1,
max_iter=25, history_size=20, line_search_fn="strong_wolfe", tolerance_change=1e-9,
tolerance_grad=1e-7)``, then ``delta.clamp_(-5, 5)`` and the scored positions get ``z + delta``. An optional L2 penalty
``l2/2 |delta|^2`` (not in #1350) regularises the V free logits that a single window's few
context positions cannot pin down.

One L-BFGS over all windows' deltas would couple them through its shared line search and
curvature history (techniques.md §6.4), so each window runs its own. Warm start: a window starts
from the previous window's final delta on this rank (its context targets precede this window's
first scored target, so this stays causal). ``fit_shared_logit_delta`` is #1350 as published:
one delta for the whole batch, warm-started from the previous batch (not causal).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class LBFGSConfig:
    """L-BFGS settings (defaults: #1350)."""

    max_iter: int = 25
    history_size: int = 20
    lr: float = 1.0
    tolerance_change: float = 1e-9
    tolerance_grad: float = 1e-7
    clamp: Optional[float] = 5.0
    l2: float = 0.0


def fit_logit_delta(z: Tensor, y: Tensor, init: Tensor, cfg: LBFGSConfig) -> Tensor:
    """One logit delta ``[V]`` minimising ``mean CE(z + delta, y) + l2/2 |delta|^2`` from ``init``
    (detached result; ``cfg.l2 = 0`` is #1350's objective).

    :param z: ``[n, V]`` fixed logits of the loss positions; ``y``: ``[n]`` targets.
    Returns ``init`` (copied) when ``n == 0``.
    """
    delta = init.detach().clone()
    if z.shape[0] == 0 or cfg.max_iter <= 0:
        return delta
    delta.requires_grad_(True)
    opt = torch.optim.LBFGS([delta], lr=cfg.lr, max_iter=cfg.max_iter, history_size=cfg.history_size,
                            line_search_fn="strong_wolfe", tolerance_change=cfg.tolerance_change,
                            tolerance_grad=cfg.tolerance_grad)
    z = z.detach()

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(z + delta, y, reduction="mean")
        if cfg.l2:
            loss = loss + 0.5 * cfg.l2 * (delta * delta).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    out = delta.detach()
    if cfg.clamp is not None:
        out = out.clamp(-cfg.clamp, cfg.clamp)
    return out


def fit_window_logit_deltas(z: Tensor, targets: Tensor, ctx_mask: Tensor, cfg: LBFGSConfig,
                            init: Optional[Tensor] = None, warm_start: bool = True) -> Tensor:
    """Per-window logit deltas ``[B, V]``, fitted window by window, left to right.

    :param z: ``[B, T, V]`` fixed logits; ``targets`` ``[B, T]``; ``ctx_mask`` bool ``[B, T]``.
    :param init: the delta to start the first window from (the previous batch's last one), or None (zeros).
    :param warm_start: start every window from the previous window's result (else from zeros).
    """
    B, T, V = z.shape
    zero = torch.zeros(V, dtype=z.dtype, device=z.device)
    prev = zero if init is None else init
    out = []
    for i in range(B):
        m = ctx_mask[i]
        d = fit_logit_delta(z[i][m], targets[i][m], prev if warm_start else zero, cfg)
        out.append(d)
        prev = d
    return torch.stack(out)


def fit_shared_logit_delta(z: Tensor, targets: Tensor, ctx_mask: Tensor, cfg: LBFGSConfig,
                           init: Optional[Tensor] = None) -> Tensor:
    """#1350 as published: one delta ``[V]`` over every window's loss positions (not causal)."""
    V = z.shape[-1]
    start = torch.zeros(V, dtype=z.dtype, device=z.device) if init is None else init
    return fit_logit_delta(z[ctx_mask], targets[ctx_mask], start, cfg)
