"""The baseline's sequential loader (pg_core.md §4.6) and the validation stream (§3.4)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from golf_core.data.loaders import SequentialLoader, read_window, shard_tokens
from golf_core.data.shards import write_shard
from golf_core.data.validation import load_validation_tokens
from golf_core.errors import DataError


@pytest.fixture
def shards(tmp_path):
    rng = np.random.default_rng(0)
    sizes = [1000, 37, 2500]
    arrays = [rng.integers(0, 60000, size=n) for n in sizes]
    # written out of order on purpose: the loader sorts by name
    paths = [write_shard(tmp_path / f"fineweb_train_{i:06d}.bin", a) for i, a in reversed(list(enumerate(arrays)))]
    return paths, np.concatenate(arrays)


def _reference_batches(stream, calls, local_tokens, seq_len, world):
    """Independent model of the baseline: a global cursor over the wrapped stream; every call takes
    (local+1)*world tokens and rank r keeps its (local+1)-token span."""
    out = {r: [] for r in range(world)}
    cursor = 0
    span = local_tokens + 1
    for _ in range(calls):
        idx = (cursor + np.arange(span * world)) % len(stream)
        chunk = stream[idx]
        cursor += span * world
        for r in range(world):
            local = chunk[r * span:(r + 1) * span]
            out[r].append((local[:-1].reshape(-1, seq_len), local[1:].reshape(-1, seq_len)))
    return out


@pytest.mark.parametrize("world", [1, 3])
def test_sequential_loader_matches_reference(shards, world):
    paths, stream = shards
    local, seq = 256, 64
    ref = _reference_batches(stream, 20, local, seq, world)  # 20*257*3 > 3537: wraps around
    for r in range(world):
        loader = SequentialLoader(paths, r, world)
        for x_ref, y_ref in ref[r]:
            x, y = loader.next_batch(local, seq)
            assert x.dtype == torch.int64 and x.shape == (local // seq, seq)
            assert np.array_equal(x.numpy(), x_ref) and np.array_equal(y.numpy(), y_ref)


def test_state_dict_resumes_exactly(shards):
    paths, _ = shards
    a = SequentialLoader(paths, 1, 2)
    for _ in range(7):
        a.next_batch(128, 32)
    state = a.state_dict()
    expected = [a.next_batch(128, 32) for _ in range(9)]
    b = SequentialLoader(paths, 1, 2)
    b.load_state_dict(state)
    for x_ref, y_ref in expected:
        x, y = b.next_batch(128, 32)
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)
    with pytest.raises(DataError, match="different list"):
        SequentialLoader(paths[:2], 0, 1).load_state_dict(state)


def test_loader_errors(shards):
    paths, _ = shards
    with pytest.raises(DataError, match="no training shards"):
        SequentialLoader([], 0, 1)
    with pytest.raises(DataError, match="rank 2"):
        SequentialLoader(paths, 2, 2)
    with pytest.raises(DataError, match="no sequence"):
        SequentialLoader(paths, 0, 1).next_batch(10, 64)


def test_read_window(shards):
    paths, _ = shards
    p = sorted(paths)[0]
    mm = shard_tokens(p)
    assert torch.equal(read_window(p, 10, 5), torch.from_numpy(np.asarray(mm[10:15], dtype=np.int64)))
    assert read_window(mm, 995, 10).shape == (5,)


def test_validation_tokens_truncation(tmp_path):
    a = np.arange(1, 1001) % 60000
    b = np.arange(5000, 5700)
    write_shard(tmp_path / "fineweb_val_000001.bin", b)
    write_shard(tmp_path / "fineweb_val_000000.bin", a)
    files = [tmp_path / "fineweb_val_000001.bin", tmp_path / "fineweb_val_000000.bin"]
    stream = np.concatenate([a, b])  # sorted by name
    got = load_validation_tokens(files, 64)
    n = ((len(stream) - 1) // 64) * 64 + 1
    assert got.dtype == torch.int64 and got.tolist() == stream[:n].tolist()
    got = load_validation_tokens(files, 64, max_tokens=1100)
    assert got.tolist() == stream[: ((1100 - 1) // 64) * 64 + 1].tolist()
    got = load_validation_tokens(files, 100, max_tokens=201)
    assert len(got) == 201
    with pytest.raises(DataError, match="too short"):
        load_validation_tokens(files, 2000)
    with pytest.raises(DataError, match="no validation shards"):
        load_validation_tokens([], 64)
