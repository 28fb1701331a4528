"""torch.distributed set-up from torchrun's environment, and the few collectives golf uses.

Launch with ``torchrun --nproc_per_node=N``; there is no home-made launcher. NCCL is used on
CUDA, gloo on CPU. Every helper is a no-op (or the identity) in a single process, so the same
code runs with and without torchrun.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.distributed as dist

from ..errors import GolfError


@dataclass(frozen=True)
class DistEnv:
    """This process's place: rank, world size, local rank, device and backend (None: single)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: Optional[str]

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0


def env_rank_world() -> tuple[int, int, int]:
    """(RANK, WORLD_SIZE, LOCAL_RANK) from torchrun's environment, (0, 1, 0) without it."""

    def _int(name: str, default: int) -> int:
        raw = os.environ.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise GolfError(f"environment variable {name}={raw!r} is not an integer") from None

    world = _int("WORLD_SIZE", 1)
    rank = _int("RANK", 0)
    local = _int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise GolfError(f"bad torchrun environment: RANK={rank} WORLD_SIZE={world}")
    return rank, world, local


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistEnv:
    """Initialize torch.distributed when ``WORLD_SIZE > 1`` and return this process's DistEnv.

    ``device``: ``auto`` (the local CUDA device when available, else CPU), ``cpu``, ``cuda``
    or ``cuda:N``. The backend is NCCL for CUDA and gloo for CPU; on CUDA the local device is
    made current. Calling it again after initialization returns the same environment.
    """
    rank, world, local = env_rank_world()
    if device == "auto":
        dev = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", local)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise GolfError(f"device {device!r} asks for CUDA but torch sees no GPU")
        torch.cuda.set_device(dev)
    if world == 1:
        return DistEnv(rank, world, local, dev, None)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        kw: dict[str, Any] = {"backend": backend, "timeout": datetime.timedelta(seconds=timeout_s)}
        if dev.type == "cuda":
            kw["device_id"] = dev
        dist.init_process_group(**kw)
    if dist.get_world_size() != world or dist.get_rank() != rank:
        raise GolfError(
            f"torch.distributed says rank {dist.get_rank()}/{dist.get_world_size()}, environment says {rank}/{world}"
        )
    return DistEnv(rank, world, local, dev, dist.get_backend())


def is_distributed() -> bool:
    """True when torch.distributed is initialized with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank (0 in a single process)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 in a single process)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


_OPS = {"sum": "SUM", "max": "MAX", "min": "MIN", "avg": "AVG"}


def all_reduce(t: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """In-place all-reduce of ``t`` with ``sum``, ``max``, ``min`` or ``avg``; returns ``t``.

    ``avg`` is a SUM divided by the world size (gloo has no AVG).
    """
    if op not in _OPS:
        raise ValueError(f"unknown reduce op {op!r}; use one of {sorted(_OPS)}")
    if not is_distributed():
        return t
    if op == "avg":
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= dist.get_world_size()
        return t
    dist.all_reduce(t, op=getattr(dist.ReduceOp, _OPS[op]))
    return t


def any_rank(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true on any rank (all-reduce MAX); the wallclock stop rule."""
    if not is_distributed():
        return bool(flag)
    t = torch.tensor(int(bool(flag)), device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def reduce_device() -> torch.device:
    """Where small tensors for a collective live: the current CUDA device under NCCL, else CPU."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def max_over_ranks(n: int) -> int:
    """The largest ``n`` over all ranks (``n`` itself in a single process)."""
    if not is_distributed():
        return int(n)
    t = torch.tensor([int(n)], dtype=torch.int64, device=reduce_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def token_mean_grads(params: list[torch.Tensor], count: float, loss_sum: float) -> tuple[float, float]:
    """Turn this rank's summed gradients into the token-weighted mean over every rank.

    Each rank has back-propagated ``loss * count`` over its ``count`` tokens (``loss_sum`` =
    that loss times ``count``; a rank with no tokens passes 0, 0). Missing gradients become
    zeros, gradients and ``(count, loss_sum)`` are summed over ranks, and every gradient is
    divided by the total count (at least 1). Returns ``(total count, total loss_sum)``.
    """
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    tot = torch.tensor([count, loss_sum], dtype=torch.float64, device=reduce_device())
    if is_distributed():
        for p in params:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        dist.all_reduce(tot, op=dist.ReduceOp.SUM)
    n_tok = max(float(tot[0]), 1.0)
    for p in params:
        p.grad.div_(n_tok)
    return float(tot[0]), float(tot[1])


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (picklable objects; identity when single)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def destroy_distributed() -> None:
    """Tear down the process group, if any, after a barrier (so no rank leaves while another is
    still inside a collective: gloo then aborts the late rank with "terminate called")."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
