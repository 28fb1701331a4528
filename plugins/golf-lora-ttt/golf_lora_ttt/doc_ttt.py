"""Document-independent batched LoRA TTT (PR #1530 ``eval_val_ttt_lora``) with phased global
SGD on already-scored documents (#1610, #1626 ``eval_val_ttt_phased``).

::

    docs = session.documents()                       # BOS to next BOS inclusive
    groups = length_order(docs, batch_docs)          # sorted by length, longest group first
    session.declare_order(groups)                    # the ledger judges this order
    for group in this rank's groups:
        bank.reset(); optimizer state zeroed         # per-document reset (a fresh bank if smaller)
        for chunk ci of chunk_size targets (every document of the group at once, each on its own row):
            window = the last <= seq_len targets of the document ending at the chunk's end
            logits = the model's forward with the bank            # one forward
            session.score(rows of the chunk's targets)            # score first
            if some document has a later chunk:
                session.update_tokens(that document's chunk)      # ledger: already scored
                loss = sum over those documents of mean NLL of their chunk; one optimizer step
        if phases remain and the documents scored reach the next boundary P k / N:
            global SGD on the first boundary documents scored (``phased.global_sgd``), new bank

Each document's adapter sees only its own tokens; the bank's rows are independent (AdamW is
element-wise), so a document's scores depend only on its own prefix and, with phases or a
warm-started ``A``, on documents evaluated before it.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn

from golf_core.api import BOS_ID, GolfError, frozen, length_batches

from .attach import bank_shape, per_token_nll, ttt_logits
from .lora import TARGETS, LoRABank
from .phased import GlobalSGDConfig, global_sgd, phase_boundaries, prefix_documents


@dataclass
class LoRATTTConfig:
    """Settings (defaults: #1530; phases off)."""

    rank: int = 96
    alpha: Optional[float] = None
    warm_start_a: bool = False
    targets: tuple[str, ...] = TARGETS
    chunk_size: int = 32
    seq_len: int = 2048
    batch_docs: int = 64
    optimizer: str = "adamw"
    lr: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.999
    eps: float = 1e-10
    weight_decay: float = 0.5
    grad_steps: int = 1
    seed: int = 1337
    prefix_docs: int = 0
    num_phases: int = 1
    global_sgd: GlobalSGDConfig = field(default_factory=GlobalSGDConfig)


@dataclass
class LoRATTTStats:
    """What happened: documents, groups, forwards, optimizer steps, phases (each with its
    documents and seconds), and the NLL sum after each phase (per-target NLL lives in the session)."""

    documents: int = 0
    groups: int = 0
    forwards: int = 0
    steps: int = 0
    phases: list[dict] = field(default_factory=list)


def chunk_window(ci: int, pred_len: int, num_chunks: int, chunk: int, seq_len: int) -> tuple[int, int, int, int]:
    """#1530 ``_compute_chunk_window``: ``(win_start, win_len, chunk_offset, chunk_len)`` of chunk
    ``ci`` of a document with ``pred_len`` targets, relative to the document."""
    chunk_end = pred_len if ci == num_chunks - 1 else (ci + 1) * chunk
    win_start = max(0, chunk_end - seq_len)
    chunk_start = ci * chunk
    return win_start, chunk_end - win_start, chunk_start - win_start, chunk_end - chunk_start


def make_bank(model: nn.Module, bsz: int, cfg: LoRATTTConfig, device: torch.device,
              generator: Optional[torch.Generator] = None) -> LoRABank:
    """A fresh bank for ``bsz`` documents on ``device`` (float32; float64 for a float64 model)."""
    s = bank_shape(model)
    bank = LoRABank(bsz, s["slots"], s["dim"], s["kv_dim"], s["vocab"], cfg.rank, cfg.targets, cfg.alpha,
                    cfg.warm_start_a, generator)
    wide = next(model.parameters()).dtype == torch.float64
    return bank.to(device, dtype=torch.float64 if wide else torch.float32)


def make_optimizer(bank: LoRABank, cfg: LoRATTTConfig) -> torch.optim.Optimizer:
    """#1530 ``_build_opt``: AdamW(lr, betas (beta1, beta2), eps, wd) or SGD(lr, momentum beta1, wd).
    AdamW is the fused kernel, as the record's, on CUDA and CPU (the foreach kernel rounds
    differently: up to 4.8e-7 in per-target NLL after the first update, bench/parity.md)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(bank.parameters(), lr=cfg.lr, momentum=cfg.beta1, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        fused = next(bank.parameters()).device.type in ("cuda", "cpu")
        return torch.optim.AdamW(bank.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                                 weight_decay=cfg.weight_decay, fused=fused or None)
    raise GolfError(f"lora-ttt: unknown optimizer {cfg.optimizer!r} (adamw or sgd)")


def _zero_state(opt: torch.optim.Optimizer) -> None:
    for s in opt.state.values():
        for k, v in s.items():
            if isinstance(v, torch.Tensor):
                v.zero_()
            elif k == "step":
                s[k] = 0


def lora_ttt(model: nn.Module, session: Any, cfg: Optional[LoRATTTConfig] = None, *,
             autocast: Optional[Callable[[], Any]] = None, device: Optional[torch.device] = None,
             log: Optional[Callable[[str], None]] = None, bos_id: Optional[int] = None) -> LoRATTTStats:
    """Score every target of ``session`` with document-wise LoRA TTT (module docstring); phases
    train ``model`` in place. Returns ``LoRATTTStats``."""
    cfg = cfg or LoRATTTConfig()
    if cfg.chunk_size < 1 or cfg.seq_len < cfg.chunk_size:
        raise GolfError(f"lora-ttt: chunk_size {cfg.chunk_size} must be in [1, seq_len {cfg.seq_len}]")
    ac = autocast or contextlib.nullcontext
    device = device or session.device
    bos_id = BOS_ID if bos_id is None else int(bos_id)
    docs = session.documents(bos_id)
    queue = length_batches(docs, cfg.batch_docs)
    groups = [g for _, g in queue]
    session.declare_order(groups)
    rank, world = session.rank, session.world_size
    bounds = phase_boundaries(min(cfg.prefix_docs, len(docs)), cfg.num_phases) if cfg.prefix_docs > 0 else []
    stats = LoRATTTStats(documents=len(docs))
    gen = torch.Generator().manual_seed(int(cfg.seed) + 1000003 * rank)   # the adapters' draws, per rank
    scored: list[tuple[int, int, Any]] = []     # (index in the length cut, row, document) of every scored group
    bank = make_bank(model, cfg.batch_docs, cfg, device, gen)
    opt = make_optimizer(bank, cfg)
    model.eval()
    for q in range(0, len(groups), world):
        round_groups = groups[q:q + world]
        if q + rank < len(groups):
            group = groups[q + rank]
            if len(group) == bank.bsz:
                bank.reset(gen)
                _zero_state(opt)
                cur_bank, cur_opt = bank, opt
            else:
                cur_bank = make_bank(model, len(group), cfg, device, gen)
                cur_opt = make_optimizer(cur_bank, cfg)
            _run_group(model, session, group, cur_bank, cur_opt, cfg, ac, stats)
            stats.groups += 1
        for k, g in enumerate(round_groups):
            scored += [(queue[q + k][0], row, d) for row, d in enumerate(g)]
        if bounds and len(scored) >= bounds[0]:
            # every rank reaches this point after the same round: a barrier in effect
            n_docs = bounds.pop(0)
            chosen = prefix_documents(scored, n_docs)
            tokens = [session.update_tokens((d.target_lo, d.target_hi)) for d in chosen]
            info = global_sgd(model, tokens, cfg.global_sgd, bos_id=bos_id, autocast=ac,
                              device=device, world_size=world, rank=rank)
            stats.phases.append({"phase": len(stats.phases) + 1, "scored_docs": len(scored), "trained_docs": n_docs,
                                 "loss_sum": float(session.loss_sum), "targets": int(session.token_count), **info})
            if log is not None:
                log(f"lora-ttt: phase {len(stats.phases)}: scored {len(scored)} documents, SGD on {n_docs} "
                    f"({info['tokens']} tokens, {info['steps']} steps, {info['seconds']:.1f}s)")
            model.eval()
            bank = make_bank(model, cfg.batch_docs, cfg, device, gen)
            opt = make_optimizer(bank, cfg)
    return stats


def _run_group(model: nn.Module, session: Any, group: list, bank: LoRABank, opt: torch.optim.Optimizer,
               cfg: LoRATTTConfig, ac: Callable[[], Any], stats: LoRATTTStats) -> None:
    """Score (and adapt on) one group of documents, chunk by chunk."""
    C, L = cfg.chunk_size, cfg.seq_len
    pred = [d.num_targets for d in group]
    nchunks = [-(-p // C) for p in pred]
    for ci in range(max(nchunks)):
        width = min((ci + 1) * C, L)
        starts, lens, lo, hi = [], [], [], []
        for d, p, nc in zip(group, pred, nchunks):
            if ci < nc:
                ws, wl, off, cl = chunk_window(ci, p, nc, C, L)
                starts.append(d.target_lo + ws)
                lens.append(wl)
                lo.append(d.target_lo + ci * C)
                hi.append(d.target_lo + ci * C + cl)
            else:           # a finished document keeps its row (its adapter), scoring nothing
                starts.append(d.target_lo)
                lens.append(1)
                lo.append(d.target_lo)
                hi.append(d.target_lo)
        batch = session.span_batch(starts, lens, lo, hi, width=width)
        train_rows = [b for b, nc in enumerate(nchunks) if ci < nc - 1]
        with frozen(model), torch.enable_grad() if train_rows else torch.no_grad(), ac():
            logits = ttt_logits(model, bank, batch.x)
        stats.forwards += 1
        rows = logits.detach()[batch.score_mask]
        session.score(batch, rows.float() if rows.dtype in (torch.float16, torch.bfloat16) else rows)
        if not train_rows:
            continue
        for b in train_rows:
            session.update_tokens((lo[b], hi[b]), local=True)
        _, _, off, _ = chunk_window(ci, (ci + 1) * C, ci + 1, C, L)
        mask = torch.zeros(len(group), device=logits.device)
        mask[train_rows] = 1.0
        for gi in range(cfg.grad_steps):
            if gi > 0:
                with frozen(model), torch.enable_grad(), ac():
                    logits = ttt_logits(model, bank, batch.x)
                stats.forwards += 1
            with torch.enable_grad():
                nll = per_token_nll(logits, batch.y)
                per_doc = nll[:, off:off + C].mean(dim=-1)
                opt.zero_grad(set_to_none=True)
                (per_doc * mask).sum().backward()
            opt.step()
            stats.steps += 1
