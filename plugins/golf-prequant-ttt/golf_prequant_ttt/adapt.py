"""Pre-quant AdamW TTT (techniques.md §7; #1306 ``ttt_adapt_adamw``, #1423)::

    freeze params of blocks[0:F] (with freeze_matrices off: only their scales, as #1306/#1423 did)
    opt = AdamW(trainable, lr, weight_decay=wd);  lr of epoch e = eta_min + (lr - eta_min)(1 + cos(pi e / E)) / 2,
          eta_min = 0.1 lr  (CosineAnnealingLR(T_max=E) stepped per epoch; constant without cosine)
    for epoch in 1..E: for micro-batch of <= batch_seqs sequences: mean CE; backward;
        gradient = token-weighted mean over ranks (one rank: the mean CE's own gradient); clip_grad_norm(clip); opt.step()
    restore requires_grad and the train/eval mode

An optional deadline (seconds) stops it between steps, every rank together.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn

from golf_core.api import (any_rank, is_distributed, max_over_ranks, reduce_device, token_mean_grads,
                           trainable_parameters, training_only)


@dataclass
class PrequantConfig:
    """Settings (defaults: #1306 / #1423)."""

    epochs: int = 6
    lr: float = 5e-4
    freeze_blocks: int = 2
    batch_seqs: int = 32
    grad_clip: float = 1.0
    cosine: bool = True
    eta_min_ratio: float = 0.1
    weight_decay: float = 0.0
    freeze_matrices: bool = True


@dataclass
class PrequantStats:
    """What happened: steps, completed epochs, mean loss per epoch, seconds, whether the deadline stopped it."""

    steps: int = 0
    epochs_done: int = 0
    epoch_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped_by_deadline: bool = False
    trained_params: int = 0


def epoch_lr(epoch: int, cfg: PrequantConfig) -> float:
    """Learning rate of 0-based ``epoch``: cosine from ``lr`` towards ``eta_min_ratio * lr`` over
    ``epochs``, the value torch's ``CosineAnnealingLR`` (stepped per epoch, as #1306) holds then:
    its recursive update, which differs from the closed form in the last bits."""
    if not cfg.cosine:
        return cfg.lr
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1), eta_min=cfg.lr * cfg.eta_min_ratio)
    for _ in range(epoch):
        opt.step()
        sched.step()
    return float(opt.param_groups[0]["lr"])


def prequant_adapt(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: Optional[PrequantConfig] = None, *,
                   device: Optional[torch.device] = None, autocast: Optional[Callable[[], Any]] = None,
                   deadline_s: Optional[float] = None, log: Optional[Callable[[str], None]] = None) -> PrequantStats:
    """Fine-tune ``model`` in place on this rank's sequences ``x, y`` (``[n, seq_len]``, CPU).

    :param deadline_s: stop (between steps, all ranks together) once this many seconds have passed.
    """
    cfg = cfg or PrequantConfig()
    device = device or next(model.parameters()).device
    ac = autocast or contextlib.nullcontext
    params = trainable_parameters(model, cfg.freeze_blocks, keep_bank_matrices=not cfg.freeze_matrices)
    stats = PrequantStats(trained_params=sum(p.numel() for p in params))
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-max_over_ranks(x.shape[0]) // cfg.batch_seqs)
    t0 = time.time()
    try:
        with training_only(model, params):
            model.train()
            with torch.enable_grad():
                _epochs(model, params, opt, x, y, cfg, steps_per_epoch, device, ac, t0, deadline_s, log, stats)
    finally:
        opt.zero_grad(set_to_none=True)
        stats.seconds = time.time() - t0
    return stats


def _epochs(model: nn.Module, params: list[nn.Parameter], opt: torch.optim.Optimizer, x: torch.Tensor,
            y: torch.Tensor, cfg: PrequantConfig, steps_per_epoch: int, device: torch.device,
            ac: Callable[[], Any], t0: float, deadline_s: Optional[float], log: Optional[Callable[[str], None]],
            stats: PrequantStats) -> None:
    """The epochs of :func:`prequant_adapt` (stats updated in place)."""
    for epoch in range(cfg.epochs):
        lr = epoch_lr(epoch, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        loss_sum = count_sum = 0.0
        for s in range(steps_per_epoch):
            if deadline_s is not None and any_rank(time.time() - t0 >= deadline_s, reduce_device()):
                stats.stopped_by_deadline = True
                break
            xb = x[s * cfg.batch_seqs:(s + 1) * cfg.batch_seqs].to(device)
            yb = y[s * cfg.batch_seqs:(s + 1) * cfg.batch_seqs].to(device)
            opt.zero_grad(set_to_none=True)
            count = float(yb.numel())
            if not is_distributed():
                # one rank: the mean loss's own gradient, as #1306 steps (no x count / count round
                # trip, which rounds differently in float32 when count is not a power of two)
                with ac():
                    loss = model(xb, yb)
                loss.backward()
                tot_count, tot_loss = count, float(loss.detach()) * count
            else:
                local = 0.0
                if count:
                    with ac():
                        loss = model(xb, yb)
                    (loss * count).backward()
                    local = float(loss.detach()) * count
                tot_count, tot_loss = token_mean_grads(params, count, local)
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            stats.steps += 1
            loss_sum += tot_loss
            count_sum += tot_count
        if count_sum:
            stats.epoch_loss.append(loss_sum / count_sum)
        if stats.stopped_by_deadline:
            break
        stats.epochs_done += 1
        if log is not None:
            log(f"prequant-ttt: epoch {epoch + 1}/{cfg.epochs} lr:{lr:.3g} loss:{stats.epoch_loss[-1] if stats.epoch_loss else float('nan'):.4f}")
