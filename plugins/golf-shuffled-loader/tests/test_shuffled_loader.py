"""#1394's ShuffledSequenceLoader: an independent reference, coverage without replacement,
the shard distribution, determinism (and the rank-only seeding trap), and exact resume."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from golf_core.data.shards import write_shard
from golf_core.errors import DataError
from golf_shuffled_loader import ShuffledSequenceLoader

L = 8
TOK = 1000  # token = shard * TOK + position


def _make_shards(root, sizes):
    return [write_shard(root / f"fineweb_train_{s:06d}.bin", np.arange(n) + s * TOK) for s, n in enumerate(sizes)]


@pytest.fixture
def shards(tmp_path):
    rng = random.Random(0)
    sizes = [rng.randint(40, 300) for _ in range(7)] + [5]  # the last one holds no window
    return _make_shards(tmp_path, sizes), sizes


def _decode(x):
    return [divmod(int(v), TOK) for v in x[:, 0]]


# ---- independent reference (written from research/pg_core.md §5.6) ---------------------------

def reference_rows(sizes, rank, W, rows_per_batch, nbatches):
    mine = list(range(len(sizes)))[rank::W]
    rng = np.random.Generator(np.random.PCG64(rank))
    lists = {}

    def reset(k):
        n = sizes[mine[k]]
        mp = min(L - 1, max(0, n - L - 1))
        ph = int(rng.integers(mp + 1)) if mp > 0 else 0
        lists[k] = [ph + int(i) * L for i in rng.permutation((n - 1 - ph) // L)]

    for k in range(len(mine)):
        reset(k)
    out = []
    for _ in range(nbatches):
        rem = np.array([len(lists[k]) for k in range(len(mine))], dtype=np.float64)
        batch = []
        for _ in range(rows_per_batch):
            if rem.sum() <= 0:
                for k in range(len(mine)):
                    reset(k)
                rem = np.array([len(lists[k]) for k in range(len(mine))], dtype=np.float64)
            k = int(rng.choice(len(mine), p=rem / rem.sum()))
            batch.append((mine[k], lists[k].pop()))
            rem[k] -= 1
        out.append(batch)
    return out


@pytest.mark.parametrize("W", [1, 3])
def test_batches_match_independent_reference(shards, W):
    files, sizes = shards
    for rank in range(W):
        ref = reference_rows(sizes, rank, W, 6, 60)  # crosses several full re-draws
        ld = ShuffledSequenceLoader(files, rank, W)
        for b in range(60):
            x, y = ld.next_batch(6 * L + 3, L)  # a remainder of tokens is ignored
            assert x.shape == (6, L) and x.dtype == torch.int64
            assert _decode(x) == ref[b], f"rank {rank} batch {b}"
            assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)


# ---- coverage without replacement ----------------------------------------------------------------

def test_each_epoch_covers_every_window_exactly_once(shards):
    files, sizes = shards
    ld = ShuffledSequenceLoader(files, seq_len=L)
    for epoch in range(4):
        first = ld.next_starts(1)  # from the second epoch on, this draw re-draws every shard
        counts = ld.remaining()
        counts[first[0][0]] += 1
        total = sum(counts)
        seen = first + ld.next_starts(total - 1)
        assert len(set(seen)) == total  # no window twice
        assert ld.remaining() == [0] * len(files)
        for s, n in enumerate(sizes):
            starts = sorted(p for sh, p in seen if sh == s)
            assert len(starts) == counts[s]
            if (n - 1) // L:
                phase = starts[0]
                assert 0 <= phase <= min(L - 1, max(0, n - L - 1))
                assert starts == [phase + k * L for k in range((n - 1 - phase) // L)]
                assert starts[-1] + L + 1 <= n
            else:
                assert starts == []
    x, _ = ld.next_batch(3 * L, L)  # the windows' tokens are the shard's tokens from each start
    for (s, p), row in zip(_decode(x), x):
        assert row.tolist() == [s * TOK + p + i for i in range(L)]


# ---- distribution ---------------------------------------------------------------------------------

def test_shard_choice_is_proportional_to_windows_left(tmp_path):
    from scipy.stats import chisquare

    ks = [10, 20, 30]  # n = k*L + L tokens hold exactly k windows for every phase
    files = _make_shards(tmp_path, [k * L + L for k in ks])
    first = np.zeros(3)
    after = np.zeros(3)  # the second pick, given the first took one window of shard 2
    n_after = 0
    for seed in range(2000):
        ld = ShuffledSequenceLoader(files, seq_len=L, seed=seed)
        assert ld.remaining() == ks
        (a, _), (b, _) = ld.next_starts(2)
        first[a] += 1
        if a == 2:
            after[b] += 1
            n_after += 1
    assert chisquare(first, np.array(ks) / 60 * 2000).pvalue > 1e-4
    assert chisquare(after, np.array([10, 20, 29]) / 59 * n_after).pvalue > 1e-4


# ---- determinism and the seeding trap -------------------------------------------------------------

def _ctx(files, seed, rank=0, world=1):
    from golf_core.config import TrainSection
    from golf_core.context import RunContext
    from golf_core.data.paths import DataPaths
    from golf_core.recipe import Recipe

    ctx = RunContext(recipe=Recipe(plugins=["shuffled-loader"], train=TrainSection(seed=seed, train_seq_len=L)),
                     plugins=None, rank=rank, world_size=world)
    ctx._data = DataPaths(files[0].parent, files[0].parent / "t.model", list(files), [], "demo", 1024)
    return ctx


def _batches(ld, n=10):
    return [ld.next_batch(5 * L, L)[0] for _ in range(n)]


def test_deterministic_and_not_seeded_by_the_run_seed(shards):
    from golf_shuffled_loader import plugin as P

    files, _ = shards
    rank_only = P.ShuffledLoaderOptions()
    a = _batches(P.golf_make_loader(ctx=_ctx(files, 1), opts=rank_only, purpose="train"))
    b = _batches(P.golf_make_loader(ctx=_ctx(files, 2), opts=rank_only, purpose="train"))
    assert all(torch.equal(u, v) for u, v in zip(a, b))  # the trap: seeds 1 and 2 see the same data
    again = _batches(ShuffledSequenceLoader(list(reversed(files)), seq_len=L))
    assert all(torch.equal(u, v) for u, v in zip(a, again))
    seeded = P.ShuffledLoaderOptions(seed_with_rank_only=False)
    c = _batches(P.golf_make_loader(ctx=_ctx(files, 1), opts=seeded, purpose="train"))
    d = _batches(P.golf_make_loader(ctx=_ctx(files, 2), opts=seeded, purpose="train"))
    c2 = _batches(P.golf_make_loader(ctx=_ctx(files, 1), opts=seeded, purpose="train"))
    assert all(torch.equal(u, v) for u, v in zip(c, c2))
    assert not all(torch.equal(u, v) for u, v in zip(c, d))
    assert not all(torch.equal(u, v) for u, v in zip(a, c))


def test_ranks_own_disjoint_shards(shards):
    files, _ = shards
    W = 3
    for r in range(W):
        ld = ShuffledSequenceLoader(files, r, W, seq_len=L)
        assert [f.name for f in ld.files] == [f.name for f in sorted(files)][r::W]
        shard_ids = {s for x in _batches(ld, 5) for s, _ in _decode(x)}
        assert shard_ids <= set(range(r, len(files), W))


def test_bad_input_errors(shards, tmp_path):
    files, _ = shards
    with pytest.raises(DataError, match="rank 3 gets none"):
        ShuffledSequenceLoader(files[:3], 3, 4)
    with pytest.raises(DataError, match="no shard"):
        ShuffledSequenceLoader(_make_shards(tmp_path / "s", [3, 6]), seq_len=L)
    ld = ShuffledSequenceLoader(files, seq_len=L)
    with pytest.raises(DataError, match="seq_len changed"):
        ld.next_batch(4 * L, 2 * L)
    with pytest.raises(DataError, match="seed"):
        ShuffledSequenceLoader(files, seq_len=L, seed=3).load_state_dict(ld.state_dict())


# ---- resume ---------------------------------------------------------------------------------------

def test_resume_through_a_checkpoint_gives_identical_batches(shards, tmp_path):
    from golf_core.train.checkpoint import load_checkpoint, save_checkpoint

    files, _ = shards
    W, total, cut = 2, 50, 17  # the cut and the tail both cross full re-draws
    for rank in range(W):
        full = ShuffledSequenceLoader(files, rank, W, seq_len=L)
        want = [full.next_batch(7 * L, L) for _ in range(total)]
        first = ShuffledSequenceLoader(files, rank, W, seq_len=L)
        got = [first.next_batch(7 * L, L) for _ in range(cut)]
        root = tmp_path / f"ck{rank}"
        save_checkpoint(root, cut, {"loader": first.state_dict()})
        state, _, _ = load_checkpoint(root, rank=0, world_size=1)
        resumed = ShuffledSequenceLoader(files, rank, W, seq_len=L)
        resumed.load_state_dict(state["loader"])
        got += [resumed.next_batch(7 * L, L) for _ in range(total - cut)]
        for i, ((xw, yw), (xg, yg)) in enumerate(zip(want, got)):
            assert torch.equal(xw, xg) and torch.equal(yw, yg), f"rank {rank} batch {i}"
