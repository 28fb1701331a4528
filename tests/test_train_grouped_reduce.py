"""grouped_all_reduce on two gloo ranks against the float64 mean of both ranks' tensors."""
from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from golf_core.train.grouped_reduce import grouped_all_reduce, pack_groups

SHAPES = [(3,), (4, 5), (40_000,), (2, 2), (7,)]
DTYPES = [torch.float32, torch.float32, torch.float32, torch.bfloat16, torch.float64]


def _tensors(rank: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(100 + rank)
    return [torch.randn(*s, generator=g).to(d) for s, d in zip(SHAPES, DTYPES)]


def _worker(rank: int, init: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        ts = _tensors(rank)
        calls = grouped_all_reduce(ts, max_numel=1 << 15)
        if rank == 0:
            torch.save({"tensors": ts, "calls": calls}, out)
    finally:
        dist.destroy_process_group()


def test_pack_groups_by_dtype_and_size():
    a, b, c = torch.zeros(3), torch.zeros(40_000), torch.zeros(2, dtype=torch.bfloat16)
    packed, single = pack_groups([a, b, c])
    assert list(packed) == [torch.float32, torch.bfloat16] and packed[torch.float32][0] is a
    assert single == [b]


def test_single_process_is_a_no_op():
    t = torch.ones(3)
    assert grouped_all_reduce([t]) == 0 and t.tolist() == [1.0, 1.0, 1.0]


def test_two_ranks_average_like_float64(tmp_path):
    """Every tensor becomes the mean over both ranks (float64 reference, compared in each dtype);
    three dtypes of small tensors take one call each, the 40,000-element one its own: 4 calls."""
    out = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(f"file://{tmp_path / 'init'}", str(out)), nprocs=2, join=True)
    got = torch.load(out, weights_only=True)
    assert got["calls"] == 4
    r0, r1 = _tensors(0), _tensors(1)
    for t, a, b in zip(got["tensors"], r0, r1):
        ref = (a.double() + b.double()) / 2
        tol = 1e-2 if t.dtype == torch.bfloat16 else 1e-6
        torch.testing.assert_close(t.double(), ref, rtol=tol, atol=tol)
        assert t.dtype == a.dtype
