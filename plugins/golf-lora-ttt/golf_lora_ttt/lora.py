"""Batched LoRA adapters, one set per document row and per virtual layer (PR #1530
``BatchedLinearLoRA``/``BatchedTTTLoRA``; #1787's alpha and warm start).

A ``BatchedLoRA`` holds ``A [B, r, in]`` and ``B [B, out, r]`` for ``B`` documents::

    delta(x) = (x @ A^T) @ B^T * scale        x: [B, T, in],  scale = alpha / r (1 without alpha)

``reset()`` zeroes ``B`` and, unless ``warm_start_a``, draws ``A ~ U(-1/sqrt(in), 1/sqrt(in))``
again, so a reset adapter adds exactly zero. Draws come from ``generator`` (a seeded
``torch.Generator``, so an evaluation does not depend on what used the global RNG before it). A ``LoRABank`` has one adapter per target and slot:
``q`` (d -> d), ``k`` and ``v`` (d -> kv_dim) on the attention input, ``o`` (d -> d, reading the
attention input and added to the attention output), ``mlp`` (d -> d, reading the MLP input and
added to its output), one per virtual layer, and ``head`` (d -> vocab, added to the logits before
the softcap). Construction and reset draw ``A`` in #1530's order: head, then every q, v, k,
mlp, o slot.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

import torch
from torch import Tensor, nn

#: Every target a bank may adapt, in #1530's order of random draws (head first).
TARGETS = ("head", "q", "v", "k", "mlp", "o")


class BatchedLoRA(nn.Module):
    """Per-row low-rank adapter ``in -> out`` of rank ``r`` for ``bsz`` rows (module docstring)."""

    def __init__(self, bsz: int, in_features: int, out_features: int, rank: int, alpha: Optional[float] = None,
                 warm_start_a: bool = False, generator: Optional[torch.Generator] = None):
        super().__init__()
        self.bound = 1.0 / math.sqrt(in_features)
        self.scale = 1.0 if alpha is None else float(alpha) / rank
        self.warm_start_a = warm_start_a
        self.A = nn.Parameter(torch.empty(bsz, rank, in_features).uniform_(-self.bound, self.bound, generator=generator))
        self.B = nn.Parameter(torch.zeros(bsz, out_features, rank))

    def reset(self, generator: Optional[torch.Generator] = None) -> None:
        """``B = 0``; ``A`` drawn again unless warm-started (on the CPU, then copied)."""
        with torch.no_grad():
            if not self.warm_start_a:
                a = torch.empty(self.A.shape).uniform_(-self.bound, self.bound, generator=generator)
                self.A.copy_(a)
            self.B.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """``(x @ A^T) @ B^T * scale`` for ``x [bsz, T, in]``."""
        out = (x @ self.A.transpose(1, 2).to(x.dtype)) @ self.B.transpose(1, 2).to(x.dtype)
        return out * self.scale if self.scale != 1.0 else out


class LoRABank(nn.Module):
    """The adapters of one document batch: ``slots`` virtual layers, model width ``dim``,
    ``kv_dim``, ``vocab``; ``targets`` a subset of ``TARGETS``."""

    def __init__(self, bsz: int, slots: int, dim: int, kv_dim: int, vocab: int, rank: int,
                 targets: Iterable[str] = TARGETS, alpha: Optional[float] = None, warm_start_a: bool = False,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        targets = tuple(targets)
        bad = [t for t in targets if t not in TARGETS]
        if bad:
            raise ValueError(f"unknown LoRA target(s) {bad}; choose from {list(TARGETS)}")
        self.bsz, self.slots, self.targets = bsz, slots, targets
        outs = {"q": dim, "k": kv_dim, "v": kv_dim, "o": dim, "mlp": dim}
        kw = {"alpha": alpha, "warm_start_a": warm_start_a, "generator": generator}
        self.head = BatchedLoRA(bsz, dim, vocab, rank, **kw) if "head" in targets else None
        self.layers = nn.ModuleDict()
        for t in TARGETS[1:]:
            if t in targets:
                self.layers[t] = nn.ModuleList([BatchedLoRA(bsz, dim, outs[t], rank, **kw) for _ in range(slots)])

    def adapters(self) -> list[BatchedLoRA]:
        """Every adapter, in the order of random draws."""
        out = [self.head] if self.head is not None else []
        for t in TARGETS[1:]:
            if t in self.layers:
                out += list(self.layers[t])
        return out

    def reset(self, generator: Optional[torch.Generator] = None) -> None:
        """Reset every adapter (``BatchedLoRA.reset``), in the order of random draws."""
        for a in self.adapters():
            a.reset(generator)

    def delta(self, target: str, slot: int, x: Tensor) -> Optional[Tensor]:
        """The adapter output of ``target`` at virtual layer ``slot`` (None when not adapted)."""
        if target == "head":
            return None if self.head is None else self.head(x)
        mods = self.layers[target] if target in self.layers else None
        if mods is None:
            return None
        if slot >= len(mods):
            raise IndexError(f"LoRA bank has {len(mods)} slots; the model ran virtual layer {slot}")
        return mods[slot](x)
