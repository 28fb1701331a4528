"""Phased TTT: full-parameter SGD on documents already scored (PR #1610 one phase, #1626
several; ``train_val_ttt_global_sgd_distributed`` and the pause logic of ``eval_val_ttt_phased``).

Phase boundaries are ``floor(P k / N)`` documents, ``k = 1..N``. When at least the next boundary
``b`` documents have been scored, the scored documents are sorted by (their group's index in the
length-sorted grouping, their row) and the first ``b`` are trained on (every phase retrains on all
scored prefix documents up to its boundary). Their tokens (each BOS to next BOS inclusive) are
concatenated and trained like #1413's chunks::

    chunks of G tokens (the last one skipped); lr cosine over chunks (after an optional linear warmup)
    per chunk: seq_len sequences split over ranks; epochs x micro-batches of batch_seqs sequences:
        loss = mean NLL over the micro-batch's tokens as one row, attention cut at every BOS and every
               seq_len tokens after one (#1626 GLOBAL_TTT_RESPECT_DOC_BOUNDARIES: variable-length
               attention; here the model's DocumentMask seam)
        gradients averaged over ranks, clip_grad_norm (the norm summed as over the banked record's
        banks with ``clip_order`` "banks"/"banks-first"), SGD(momentum) step
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from golf_core.api import DocumentMask, all_reduce, banked_clip_order, clip_banked_, grad_only_for


@dataclass
class GlobalSGDConfig:
    """Settings (defaults: #1626 as run; #1610: lr 0.005, epochs 3)."""

    lr: float = 0.001
    momentum: float = 0.9
    epochs: int = 1
    chunk_tokens: int = 32768
    batch_seqs: int = 32
    seq_len: int = 2048
    grad_clip: float = 1.0
    warmup_chunks: int = 0
    warmup_start_lr: float = 0.0
    respect_doc_boundaries: bool = True
    #: how the clip's total norm is summed: "per-matrix" (golf's parameters), or over the banked
    #: record's banks ("banks"; "banks-first": the banks registered first, #1529/#1530 on)
    clip_order: str = "per-matrix"


def phase_boundaries(prefix_docs: int, num_phases: int) -> list[int]:
    """``[floor(P k / N) for k = 1..N]``."""
    n = max(1, int(num_phases))
    return [prefix_docs * (k + 1) // n for k in range(n)]


def prefix_documents(scored: list[tuple[int, int, Any]], count: int) -> list[Any]:
    """The first ``count`` of the scored ``(group index, row, document)`` by group index, then row."""
    return [d for _, _, d in sorted(scored, key=lambda s: (s[0], s[1]))[:count]]


def chunk_lr(ci: int, num_chunks: int, cfg: GlobalSGDConfig) -> float:
    """#1626's lr of chunk ``ci``: linear warmup over ``warmup_chunks``, then cosine to 0."""
    warm = max(0, min(cfg.warmup_chunks, num_chunks - 1))
    if warm > 0 and ci < warm:
        return cfg.warmup_start_lr + (cfg.lr - cfg.warmup_start_lr) * (ci / max(warm - 1, 1))
    steps = max(num_chunks - 1 - warm, 1)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * max(ci - warm, 0) / steps))


def segment_loss(model: nn.Module, x_flat: torch.Tensor, y_flat: torch.Tensor, bos_id: int, max_len: int) -> torch.Tensor:
    """Mean NLL of ``y_flat`` over one row ``x_flat`` with attention kept inside documents, cut
    every ``max_len`` tokens (#1626: variable-length attention with ``_build_cu_seqlens``; here the
    model's own ``DocumentMask`` seam, restored afterwards)."""
    before = getattr(model, "document_mask", None)
    model.set_document_mask(DocumentMask(bos_id, max_len))
    try:
        logits = model.forward_logits(x_flat[None])[0]
    finally:
        model.set_document_mask(before)
    logits = logits if logits.dtype == torch.float64 else logits.float()
    return F.cross_entropy(logits, y_flat, reduction="mean")


def global_sgd(model: nn.Module, doc_tokens: list[torch.Tensor], cfg: GlobalSGDConfig, *, bos_id: int,
               autocast: Optional[Callable[[], Any]] = None, device: Optional[torch.device] = None,
               world_size: int = 1, rank: int = 0) -> dict:
    """Train every parameter of ``model`` on the concatenated ``doc_tokens`` (module docstring).
    Returns ``{"tokens", "chunks", "steps", "seconds"}``."""
    t0 = time.time()
    ac = autocast or contextlib.nullcontext
    device = device or next(model.parameters()).device
    tokens = torch.cat(doc_tokens) if doc_tokens else torch.zeros(0, dtype=torch.int64)
    total = max(0, tokens.numel() - 1)
    L, G = cfg.seq_len, cfg.chunk_tokens
    num_chunks = -(-total // G) if total else 0
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)
    order = banked_clip_order(model, cfg.clip_order)
    steps = 0
    was_training = model.training
    with grad_only_for(model, params):
        model.train()
        for ci in range(max(0, num_chunks - 1)):
            c0, c1 = ci * G, min((ci + 1) * G, total)
            seqs = (c1 - c0) // L
            if seqs <= 0 or cfg.epochs <= 0:
                continue
            for g in opt.param_groups:
                g["lr"] = chunk_lr(ci, num_chunks, cfg)
            s0, s1 = seqs * rank // world_size, seqs * (rank + 1) // world_size
            for _ in range(cfg.epochs):
                for bs in range(0, s1 - s0, cfg.batch_seqs):
                    be = min(bs + cfg.batch_seqs, s1 - s0)
                    a, b = c0 + (s0 + bs) * L, c0 + (s0 + be) * L + 1
                    if b > tokens.numel():
                        continue
                    local = tokens[a:b].to(device)
                    opt.zero_grad(set_to_none=True)
                    with torch.enable_grad(), ac():
                        if cfg.respect_doc_boundaries:
                            loss = segment_loss(model, local[:-1], local[1:], bos_id, L)
                        else:
                            loss = model(local[:-1].reshape(-1, L), local[1:].reshape(-1, L))
                    loss.backward()
                    if world_size > 1:
                        for p in params:
                            if p.grad is not None:
                                all_reduce(p.grad, "avg")
                    if cfg.grad_clip > 0 and order is not None:
                        clip_banked_(order, cfg.grad_clip)
                    elif cfg.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                    opt.step()
                    steps += 1
    model.train(was_training)
    return {"tokens": int(tokens.numel()), "chunks": num_chunks, "steps": steps, "seconds": time.time() - t0}
