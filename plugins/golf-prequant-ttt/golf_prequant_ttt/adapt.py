"""Pre-quant AdamW TTT (techniques.md §7; #1306 ``ttt_adapt_adamw``, #1423)::

    freeze params of blocks[0:F]
    opt = AdamW(trainable, lr, weight_decay=wd);  lr of epoch e = eta_min + (lr - eta_min)(1 + cos(pi e / E)) / 2,
          eta_min = 0.1 lr  (CosineAnnealingLR(T_max=E) stepped per epoch; constant without cosine)
    for epoch in 1..E: for micro-batch of <= batch_seqs sequences: mean CE; backward;
        gradient = token-weighted mean over ranks; clip_grad_norm(clip); opt.step()
    restore requires_grad and the train/eval mode

An optional deadline (seconds) stops it between steps, every rank together.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn


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
    """Learning rate of 0-based ``epoch``: cosine from ``lr`` towards ``eta_min_ratio * lr`` over ``epochs``."""
    if not cfg.cosine:
        return cfg.lr
    eta_min = cfg.eta_min_ratio * cfg.lr
    return eta_min + (cfg.lr - eta_min) * 0.5 * (1.0 + math.cos(math.pi * epoch / max(cfg.epochs, 1)))


def trainable_parameters(model: nn.Module, freeze_blocks: int) -> list[nn.Parameter]:
    """Every parameter except those of ``model.blocks[0:freeze_blocks]``."""
    frozen = set()
    if freeze_blocks > 0:
        blocks = getattr(model, "blocks", None)
        if blocks is None:
            raise ValueError(f"freeze_blocks={freeze_blocks} but {type(model).__name__} has no .blocks")
        for b in list(blocks)[:freeze_blocks]:
            frozen.update(id(p) for p in b.parameters())
    return [p for p in model.parameters() if id(p) not in frozen]


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def _reduce_device(device: torch.device) -> torch.device:
    d = _dist()
    if d is not None and d.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def prequant_adapt(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: Optional[PrequantConfig] = None, *,
                   device: Optional[torch.device] = None, autocast: Optional[Callable[[], Any]] = None,
                   deadline_s: Optional[float] = None, log: Optional[Callable[[str], None]] = None) -> PrequantStats:
    """Fine-tune ``model`` in place on this rank's sequences ``x, y`` (``[n, seq_len]``, CPU).

    :param deadline_s: stop (between steps, all ranks together) once this many seconds have passed.
    """
    cfg = cfg or PrequantConfig()
    device = device or next(model.parameters()).device
    ac = autocast or contextlib.nullcontext
    d = _dist()
    params = trainable_parameters(model, cfg.freeze_blocks)
    keep = {id(p) for p in params}
    flags = [(p, p.requires_grad) for p in model.parameters()]
    stats = PrequantStats(trained_params=sum(p.numel() for p in params))
    was_training = model.training
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_max = x.shape[0]
    if d is not None:
        t = torch.tensor([n_max], dtype=torch.int64, device=_reduce_device(device))
        d.all_reduce(t, op=d.ReduceOp.MAX)
        n_max = int(t.item())
    steps_per_epoch = -(-n_max // cfg.batch_seqs)
    t0 = time.time()
    try:
        for p, _ in flags:
            p.requires_grad_(id(p) in keep)
        model.train()
        with torch.enable_grad():
            for epoch in range(cfg.epochs):
                lr = epoch_lr(epoch, cfg)
                for g in opt.param_groups:
                    g["lr"] = lr
                loss_sum = count_sum = 0.0
                for s in range(steps_per_epoch):
                    if deadline_s is not None and _past(time.time() - t0 >= deadline_s, device):
                        stats.stopped_by_deadline = True
                        break
                    xb = x[s * cfg.batch_seqs:(s + 1) * cfg.batch_seqs].to(device)
                    yb = y[s * cfg.batch_seqs:(s + 1) * cfg.batch_seqs].to(device)
                    opt.zero_grad(set_to_none=True)
                    count = float(yb.numel())
                    local = 0.0
                    if count:
                        with ac():
                            loss = model(xb, yb)
                        (loss * count).backward()
                        local = float(loss.detach()) * count
                    for p in params:
                        if p.grad is None:
                            p.grad = torch.zeros_like(p)
                    tot = torch.tensor([count, local], dtype=torch.float64, device=_reduce_device(device))
                    if d is not None:
                        for p in params:
                            d.all_reduce(p.grad, op=d.ReduceOp.SUM)
                        d.all_reduce(tot, op=d.ReduceOp.SUM)
                    n_tok = max(float(tot[0]), 1.0)
                    for p in params:
                        p.grad.div_(n_tok)
                    if cfg.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                    opt.step()
                    stats.steps += 1
                    loss_sum += float(tot[1])
                    count_sum += float(tot[0])
                if count_sum:
                    stats.epoch_loss.append(loss_sum / count_sum)
                if stats.stopped_by_deadline:
                    break
                stats.epochs_done += 1
                if log is not None:
                    log(f"prequant-ttt: epoch {epoch + 1}/{cfg.epochs} lr:{lr:.3g} loss:{stats.epoch_loss[-1] if stats.epoch_loss else float('nan'):.4f}")
    finally:
        opt.zero_grad(set_to_none=True)
        for p, f in flags:
            p.requires_grad_(f)
        model.train(was_training)
        stats.seconds = time.time() - t0
    return stats


def _past(flag: bool, device: torch.device) -> bool:
    """``flag`` OR-ed over ranks (so every rank stops at the same step)."""
    d = _dist()
    if d is None:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_reduce_device(device))
    d.all_reduce(t, op=d.ReduceOp.MAX)
    return bool(t.item())
