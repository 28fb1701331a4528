"""Grouped all-reduce of small tensors (openai/parameter-golf PR #1530's replicated-gradient sync).

Averaging many small gradients (scalars, gates, norms' gains) one collective each pays the
launch latency per tensor. :func:`grouped_all_reduce` packs every tensor with at most
``max_numel`` elements (#1530: ``1 << 15``) into one flat buffer per dtype, reduces each buffer
with one call, and copies the result back; larger tensors are reduced one call each. The result
equals reducing every tensor on its own (the same sums, in float arithmetic of the same dtype).

Single process (``world_size == 1``): nothing to do. The averaging is a SUM followed by a
division by the world size, so it also runs on gloo (which has no AVG).
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

import torch
from torch import Tensor

#: #1530's threshold: tensors up to this many elements are packed
PACK_MAX_NUMEL = 1 << 15


def pack_groups(tensors: Iterable[Tensor], max_numel: int = PACK_MAX_NUMEL) -> tuple[dict[torch.dtype, list[Tensor]], list[Tensor]]:
    """``(packed, single)``: small tensors grouped by dtype (in the given order), and the rest."""
    packed: dict[torch.dtype, list[Tensor]] = {}
    single: list[Tensor] = []
    for t in tensors:
        if t.numel() <= max_numel:
            packed.setdefault(t.dtype, []).append(t)
        else:
            single.append(t)
    return packed, single


def grouped_all_reduce(tensors: Iterable[Tensor], *, average: bool = True, max_numel: int = PACK_MAX_NUMEL,
                       group: Optional[object] = None,
                       all_reduce: Optional[Callable[..., object]] = None) -> int:
    """Sum (``average``: then divide by the world size) every tensor across ranks, in place.

    :param tensors: same shapes, dtypes and order on every rank (gradients, say).
    :param all_reduce: the SUM collective ``f(tensor, group=...)`` (default: ``torch.distributed``'s).
    :return: the number of collective calls made (0 in a single process).
    """
    import torch.distributed as dist

    tensors = [t for t in tensors if t is not None]
    world = dist.get_world_size(group) if dist.is_available() and dist.is_initialized() else 1
    if world == 1 or not tensors:
        return 0
    reduce = all_reduce or (lambda t, group=None: dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group))
    packed, single = pack_groups(tensors, max_numel)
    calls = 0
    for members in packed.values():
        flat = torch.cat([t.reshape(-1) for t in members])
        reduce(flat, group=group)
        calls += 1
        if average:
            flat.div_(world)
        offset = 0
        for t in members:
            n = t.numel()
            t.copy_(flat[offset:offset + n].view_as(t))
            offset += n
    for t in single:
        reduce(t, group=group)
        calls += 1
        if average:
            t.div_(world)
    return calls
