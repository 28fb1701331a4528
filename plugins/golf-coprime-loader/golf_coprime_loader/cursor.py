"""A shard cursor's walk: every block of a shard once, in a coprime-stride order.

A shard of ``n`` tokens read in windows of ``L + 1`` gets a random phase
``p ~ U{0..min(L-1, n-L-1)}`` (0 when that bound is not positive) and
``bc = (n - 1 - p) // L`` blocks starting at ``p + b*L``. The walk visits block
``(start + j*stride) mod bc`` at position ``j``, with ``start ~ U{0..bc-1}`` and a ``stride`` in
``[1, bc-1]`` drawn by rejection until ``gcd(stride, bc) = 1``: since the stride is a unit
modulo ``bc``, ``j -> start + j*stride`` is a bijection of ``Z/bc``, so the walk is a permutation
of all blocks. The draws happen in the order phase, start, stride (pg_core.md §6.2).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Cursor(NamedTuple):
    """One shard's walk: ``phase``, ``block_count``, ``start``, ``stride``, and ``next`` (blocks taken)."""

    phase: int
    block_count: int
    start: int
    stride: int
    next: int


def max_phase(num_tokens: int, seq_len: int) -> int:
    """The largest phase drawn for a shard: ``min(L - 1, max(0, n - L - 1))``."""
    return min(seq_len - 1, max(0, num_tokens - seq_len - 1))


def pick_coprime_stride(rng: np.random.Generator, n: int) -> int:
    """A stride in ``[1, n-1]`` coprime with ``n``, by rejection sampling (1 when ``n <= 1``)."""
    if n <= 1:
        return 1
    while True:
        s = int(rng.integers(1, n))
        if math.gcd(s, n) == 1:
            return s


def new_cursor(rng: np.random.Generator, num_tokens: int, seq_len: int) -> Cursor:
    """Draw a fresh cursor for a shard of ``num_tokens`` tokens (phase, then start, then stride)."""
    mp = max_phase(num_tokens, seq_len)
    phase = int(rng.integers(mp + 1)) if mp > 0 else 0
    bc = (num_tokens - 1 - phase) // seq_len
    start = int(rng.integers(bc)) if bc > 1 else 0
    stride = pick_coprime_stride(rng, bc)
    return Cursor(phase=phase, block_count=bc, start=start, stride=stride, next=0)


def walk_blocks(start: int, stride: int, block_count: int, first: int = 0, count: int | None = None) -> np.ndarray:
    """Block indices ``(start + j*stride) mod block_count`` for ``j`` in ``[first, first+count)``."""
    if count is None:
        count = block_count - first
    j = np.arange(first, first + count, dtype=np.int64)
    return (start + j * stride) % block_count
