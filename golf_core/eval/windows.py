"""Which windows score which targets (pg_core.md §3.4, techniques.md §13).

The validation stream has ``N + 1`` tokens and ``N`` targets; target ``i`` is token ``i + 1``
predicted from tokens ``0..i``. A window starting at ``ws`` feeds ``x = tokens[ws : ws + wl]`` and
predicts ``y = tokens[ws + 1 : ws + wl + 1]``, i.e. targets ``[ws, ws + wl)``, with
``wl = min(seq_len, N - ws)``.

With context ``ctx = seq_len - stride``, the windows start at ``ws in {0, stride, 2*stride, ...}``
with ``ws + ctx < N``; the first window scores all its positions, every later one only positions
``[ctx, wl)``, i.e. its last ``stride`` targets (fewer at the tail). Every target is scored exactly
once, with at least ``ctx`` tokens of context outside the first window. ``stride == seq_len``
(or unset) is the baseline's non-overlapping evaluation. One addition to R1394's loop: the first
window is kept even when ``N <= ctx`` (R1394's filter ``ws + ctx < N`` would drop it and score
nothing on such a short stream); for any longer stream the windows are R1394's exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from golf_core.errors import GolfError


@dataclass(frozen=True)
class Window:
    """One window: inputs ``tokens[start : start + length]``, scored positions ``[score_from, length)``."""

    index: int
    start: int
    length: int
    score_from: int

    @property
    def targets(self) -> tuple[int, int]:
        """The scored targets ``[lo, hi)``."""
        return self.start + self.score_from, self.start + self.length


class WindowSchedule:
    """The evaluation windows over ``total_targets`` targets (see the module docstring)."""

    def __init__(self, total_targets: int, seq_len: int, stride: Optional[int] = None):
        if seq_len < 1:
            raise GolfError(f"eval seq_len must be positive, got {seq_len}")
        stride = seq_len if stride is None else int(stride)
        if not 1 <= stride <= seq_len:
            raise GolfError(f"eval stride {stride} must lie in [1, seq_len={seq_len}]")
        if total_targets < 1:
            raise GolfError(f"nothing to evaluate: {total_targets} targets")
        self.total_targets = int(total_targets)
        self.seq_len = int(seq_len)
        self.stride = stride
        self.context = seq_len - stride
        starts = np.arange(0, self.total_targets, stride, dtype=np.int64)
        # ws = 0 always: R1394's filter alone drops it when N <= ctx and would score nothing.
        self.starts = starts[(starts + self.context < self.total_targets) | (starts == 0)]
        self.lengths = np.minimum(self.seq_len, self.total_targets - self.starts)
        self.score_from = np.where(self.starts == 0, 0, self.context).astype(np.int64)

    @property
    def sliding(self) -> bool:
        """True when windows overlap (stride < seq_len)."""
        return self.stride < self.seq_len

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    @property
    def num_windows(self) -> int:
        """Number of windows (``len(schedule)``)."""
        return len(self)

    def window(self, i: int) -> Window:
        """Window ``i`` (0-based, left to right)."""
        return Window(int(i), int(self.starts[i]), int(self.lengths[i]), int(self.score_from[i]))

    def score_lo(self) -> np.ndarray:
        """First scored target of every window."""
        return self.starts + self.score_from

    def score_hi(self) -> np.ndarray:
        """One past the last scored target of every window."""
        return self.starts + self.lengths

    def rank_slice(self, rank: int, world_size: int, lo: int = 0, hi: Optional[int] = None) -> tuple[int, int]:
        """Rank ``rank``'s contiguous share ``[a, b)`` of windows ``[lo, hi)``: ``n*r//W .. n*(r+1)//W``."""
        hi = len(self) if hi is None else hi
        n = hi - lo
        return lo + n * rank // world_size, lo + n * (rank + 1) // world_size

    def coverage(self) -> np.ndarray:
        """How many windows score each target (exactly 1 everywhere by construction)."""
        cov = np.zeros(self.total_targets + 1, dtype=np.int64)
        np.add.at(cov, self.score_lo(), 1)
        np.add.at(cov, self.score_hi(), -1)
        return np.cumsum(cov)[:-1]

    def chunk_ids(self, chunk_tokens: int) -> np.ndarray:
        """Chunk of every window for score-first adaptation (#1413): ``min(first_scored // C, nC - 1)``
        with ``nC = ceil(N / C)``."""
        if chunk_tokens < 1:
            raise GolfError(f"chunk_tokens must be positive, got {chunk_tokens}")
        n_chunks = -(-self.total_targets // chunk_tokens)
        return np.minimum(self.score_lo() // chunk_tokens, n_chunks - 1)

    def __repr__(self) -> str:
        return (f"WindowSchedule(total_targets={self.total_targets}, seq_len={self.seq_len}, "
                f"stride={self.stride}, windows={len(self)})")
