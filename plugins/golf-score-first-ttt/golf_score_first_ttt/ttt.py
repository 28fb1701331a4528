"""Score-first chunked test-time training (#549 / #1413; pg_core.md §6.1, techniques.md §8).

::

    chunks of C targets (C a multiple of the sequence length); a window belongs to the chunk of its
    first scored target; params = all but blocks[0:F]; opt = SGD(params, lr, momentum) kept across chunks
    for chunk c:
        1) score the chunk's windows with the current weights (no grad)
        2) unless c is the last chunk: lr_c = lr * (1 + cos(pi * c / (nC - 1))) / 2;
           tokens = session.update_tokens(chunk)   (only already-scored targets; writes the ledger)
           cut them into non-overlapping sequences of L tokens (no context before the chunk),
           split contiguously over ranks; for each epoch, micro-batches of <= batch_seqs:
           mean CE, backward, all-reduce (token-weighted mean; one rank: the mean CE's own gradient),
           clip_grad_norm(clip), SGD step

Variants (PR #1529): ``optimizer = "adamw"`` (AdamW at the same cosine lr, weight decay
``adamw_wd``) instead of SGD; ``hash_embed_size > 0`` adds the TTT-only hash embedding
(``golf_score_first_ttt.hash_embed``), trained with the model and removed afterwards. An n-gram
tilt (``golf_score_first_ttt.ngram_tilt``, #1514) may change every scored row before it is scored.

The model is changed in place (it is the eval copy decoded from the artifact).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn

from .hash_embed import install_hash_embedding, remove_hash_embedding
from golf_core.api import GolfError, max_over_ranks, token_mean_grads, trainable_parameters, training_only, window_logits


@dataclass
class TTTConfig:
    """Settings (defaults: #1413)."""

    chunk_tokens: int = 32768
    lr: float = 0.005
    epochs: int = 3
    momentum: float = 0.9
    grad_clip: float = 1.0
    freeze_blocks: int = 0
    batch_seqs: int = 32
    seq_len: Optional[int] = None
    score_batch_seqs: Optional[int] = None
    optimizer: str = "sgd"
    adamw_wd: float = 0.0
    hash_embed_size: int = 0


@dataclass
class TTTStats:
    """What happened: chunks, updates, optimizer steps, per-update ``{chunk, lr, loss, tokens}``."""

    chunks: int = 0
    updates: int = 0
    steps: int = 0
    trained_params: int = 0
    log: list[dict] = field(default_factory=list)


def chunk_lr(index: int, num_chunks: int, lr: float) -> float:
    """#1413's cosine over chunks: ``lr * (1 + cos(pi * c / (nC - 1))) / 2`` (``lr`` when ``nC == 1``)."""
    if num_chunks <= 1:
        return lr
    return lr * 0.5 * (1.0 + math.cos(math.pi * index / (num_chunks - 1)))


def split_sequences(tokens: torch.Tensor, seq_len: int, rank: int = 0, world_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's contiguous share of the non-overlapping ``seq_len`` sequences of ``tokens``
    (``n = (len - 1) // seq_len`` sequences; rank ``r`` gets ``[n r / W, n (r+1) / W)``) as ``(x, y)``."""
    n = (tokens.numel() - 1) // seq_len
    a, b = n * rank // world_size, n * (rank + 1) // world_size
    span = tokens[a * seq_len: b * seq_len + 1]
    if b <= a:
        empty = tokens.new_zeros((0, seq_len))
        return empty, empty
    return span[:-1].reshape(-1, seq_len), span[1:].reshape(-1, seq_len)


def train_on_tokens(model: nn.Module, params: list[nn.Parameter], opt: torch.optim.Optimizer, x: torch.Tensor,
                    y: torch.Tensor, cfg: TTTConfig, device: torch.device, autocast: Callable[[], Any],
                    world_size: int = 1) -> tuple[int, float]:
    """``cfg.epochs`` passes over this rank's sequences ``x, y`` (CPU), micro-batches of
    ``cfg.batch_seqs``; gradients are the token-weighted mean over ranks. Returns ``(steps, last mean loss)``."""
    n_max = max_over_ranks(x.shape[0]) if world_size > 1 else x.shape[0]
    steps_per_epoch = -(-n_max // cfg.batch_seqs)
    steps, last = 0, float("nan")
    for _ in range(cfg.epochs):
        for s in range(steps_per_epoch):
            xb = x[s * cfg.batch_seqs:(s + 1) * cfg.batch_seqs].to(device)
            yb = y[s * cfg.batch_seqs:(s + 1) * cfg.batch_seqs].to(device)
            opt.zero_grad(set_to_none=True)
            count = float(yb.numel())
            if world_size == 1:
                # one rank: the mean loss's own gradient, as #1413 steps (no x count / count round
                # trip, which rounds differently in float32 when count is not a power of two)
                with autocast():
                    loss = model(xb, yb)
                loss.backward()
                total_count, total_loss = count, float(loss.detach()) * count
            else:
                if yb.numel():
                    with autocast():
                        loss = model(xb, yb)
                    (loss * count).backward()
                    loss_sum = float(loss.detach()) * count
                else:
                    loss_sum = 0.0
                total_count, total_loss = token_mean_grads(params, count, loss_sum)
            total_count = max(total_count, 1.0)
            if cfg.grad_clip and cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            steps += 1
            last = total_loss / total_count
    opt.zero_grad(set_to_none=True)
    return steps, last


def score_first_ttt(model: nn.Module, session: Any, cfg: Optional[TTTConfig] = None, *,
                    autocast: Optional[Callable[[], Any]] = None, device: Optional[torch.device] = None,
                    score_fn: Optional[Callable[[nn.Module, Any], torch.Tensor]] = None,
                    log: Optional[Callable[[str], None]] = None, tilt: Any = None) -> TTTStats:
    """Run score-first TTT over ``session`` (an ``EvalSession``), scoring every target once.

    :param score_fn: ``score_fn(model, batch) -> logit rows`` (default ``golf_core.api.window_logits``).
    :param tilt: an object with ``apply(batch, rows) -> rows`` (``StreamTilt``) applied before scoring.
    :return: ``TTTStats``.
    """
    cfg = cfg or TTTConfig()
    seq_len = int(cfg.seq_len or session.seq_len)
    if cfg.chunk_tokens % seq_len:
        raise GolfError(f"score-first-ttt: chunk_tokens {cfg.chunk_tokens} is not a multiple of the sequence length "
                        f"{seq_len}; an update would read targets its chunk has not scored")
    if score_fn is None:
        score_fn = window_logits
    ac = autocast or contextlib.nullcontext
    device = device or session.device
    hashed = install_hash_embedding(model, cfg.hash_embed_size) if cfg.hash_embed_size > 0 else None
    params = trainable_parameters(model, cfg.freeze_blocks)
    if hashed is not None:   # #1529 appends it after the model's own parameters
        hid = {id(p) for p in hashed.hash_emb.parameters()}
        params = [p for p in params if id(p) not in hid] + [hashed.hash_emb.weight]
    if cfg.optimizer == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.adamw_wd, fused=False)
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)
    else:
        raise GolfError(f"score-first-ttt: unknown optimizer {cfg.optimizer!r} (sgd or adamw)")
    stats = TTTStats(trained_params=sum(p.numel() for p in params))
    try:
        _run_chunks(model, session, cfg, seq_len, params, opt, stats, score_fn, tilt, ac, device, log)
    finally:
        if hashed is not None:
            remove_hash_embedding(model, hashed)
    return stats


def _run_chunks(model, session, cfg, seq_len, params, opt, stats, score_fn, tilt, ac, device, log) -> None:
    with training_only(model, params):
        for chunk in session.chunks(cfg.chunk_tokens):
            stats.chunks += 1
            model.eval()
            with torch.no_grad(), ac():
                for batch in chunk.windows(cfg.score_batch_seqs):
                    rows = score_fn(model, batch)
                    session.score(batch, rows if tilt is None else tilt.apply(batch, rows))
            if chunk.is_last:
                continue
            lr = chunk_lr(chunk.index, chunk.num_chunks, cfg.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            tokens = session.update_tokens(chunk)
            x, y = split_sequences(tokens, seq_len, session.rank, session.world_size)
            model.train()
            with torch.enable_grad():
                steps, loss = train_on_tokens(model, params, opt, x, y, cfg, device, ac, session.world_size)
            stats.updates += 1
            stats.steps += steps
            stats.log.append({"chunk": chunk.index, "lr": lr, "loss": loss, "targets": [chunk.target_lo, chunk.target_hi],
                              "steps": steps})
            if log is not None:
                log(f"score-first-ttt: chunk {chunk.index + 1}/{chunk.num_chunks} lr:{lr:.6f} loss:{loss:.4f} steps:{steps}")
