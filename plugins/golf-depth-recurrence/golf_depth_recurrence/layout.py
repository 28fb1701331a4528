"""Virtual layer lists of depth recurrence (techniques §2a, §2b; pg_core §5.3).

PR #1394 form (``NUM_LOOPS``, ``LOOP_START``, ``LOOP_END``)::

    virt = [0..s-1] + [s..e] * (num_loops + 1) + [e+1..L-1]
    encoder = virt[:len(virt)//2];  decoder = virt[len(virt)//2:]

(2, 4, 5) at L=11: encoder [0,1,2,3,4,5,4], decoder [5,4,5,6,7,8,9,10] (15 block applications).

PR #1204 form (``RECUR_LAYERS``): ``virt = [0..max(R)] + sorted(R) + [max(R)+1..L-1]``, each
recurrent layer running once more right after the first pass of the segment; R = 4,5 at L=11
gives 13 applications, encoder [0..5], decoder [4,5,6,..,10].
"""
from __future__ import annotations

from typing import Sequence


def loop_virtual_layers(num_layers: int, num_loops: int, loop_start: int, loop_end: int) -> list[int]:
    """The #1394 virtual list: the segment ``loop_start..loop_end`` runs ``num_loops + 1`` times."""
    if not 0 <= loop_start <= loop_end < num_layers:
        raise ValueError(f"loop segment {loop_start}..{loop_end} is not inside 0..{num_layers - 1}")
    if num_loops < 0:
        raise ValueError(f"num_loops must be >= 0, got {num_loops}")
    segment = list(range(loop_start, loop_end + 1))
    return list(range(loop_start)) + segment * (num_loops + 1) + list(range(loop_end + 1, num_layers))


def repeat_virtual_layers(num_layers: int, recur_layers: Sequence[int]) -> list[int]:
    """The #1204 virtual list ``[0..max(R)] + sorted(R) + [max(R)+1..L-1]``."""
    layers = sorted(set(int(r) for r in recur_layers))
    if not layers:
        raise ValueError("recur_layers is empty")
    if layers[0] < 0 or layers[-1] >= num_layers:
        raise ValueError(f"recur_layers {layers} are not inside 0..{num_layers - 1}")
    cutoff = layers[-1] + 1
    return list(range(cutoff)) + layers + list(range(cutoff, num_layers))


def split_halves(virtual: Sequence[int]) -> tuple[list[int], list[int]]:
    """``(virtual[:n//2], virtual[n//2:])``: the encoder and decoder halves of a virtual list."""
    half = len(virtual) // 2
    return list(virtual[:half]), list(virtual[half:])


def skip_pairs(encoder: Sequence[int], decoder: Sequence[int], num_skips: int) -> list[tuple[int, int | None]]:
    """``(decoder block, encoder block whose output it receives or None)`` for each decoder
    position, with the model's rule: position ``j`` pops the encoder stack (LIFO) when
    ``j < num_skips`` and the stack is not empty."""
    stack = list(encoder)
    out: list[tuple[int, int | None]] = []
    for j, i in enumerate(decoder):
        src = stack.pop() if (j < num_skips and stack) else None
        out.append((i, src))
    return out
