"""The coprime-stride loader: strides, walks, the #1060 algorithm against an independent
reference, determinism, multi-rank split, and exact resume through real checkpoint files."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from golf_core.data.shards import write_shard
from golf_core.errors import DataError
from golf_coprime_loader import (
    FNV_PRIME,
    CoprimeLoader,
    path_hash_seed,
    pick_coprime_stride,
    walk_blocks,
)
from golf_coprime_loader import loader as loader_module

L = 8  # sequence length of these tests
TOK = 1000  # token = shard * TOK + position: every window names its shard and start


def _make_shards(root, sizes):
    files = []
    for s, n in enumerate(sizes):
        files.append(write_shard(root / f"fineweb_train_{s:06d}.bin", np.arange(n) + s * TOK))
    return files


@pytest.fixture
def shards(tmp_path):
    rng = random.Random(0)
    sizes = [rng.randint(60, 500) for _ in range(11)] + [5, L + 1]  # one too short, one with exactly one window
    return _make_shards(tmp_path, sizes), sizes


@pytest.fixture
def many_shards(tmp_path):
    rng = random.Random(1)
    sizes = [rng.randint(100, 900) for _ in range(40)]
    return _make_shards(tmp_path, sizes), sizes


def _decode(x):
    """(shard, start) of every row of x."""
    return [divmod(int(v), TOK) for v in x[:, 0]]


# ---- seed ---------------------------------------------------------------------------------------

def test_path_hash_seed_matches_independent_fnv():
    def ref(strings):
        h = np.uint64(0)
        with np.errstate(over="ignore"):
            for b in "".join(strings).encode():
                h = (h ^ np.uint64(b)) * np.uint64(1099511628211)
        return int(h)

    assert path_hash_seed(["a"]) == 97 * FNV_PRIME
    paths = ["./data/datasets/fineweb10B_sp8192/fineweb_train_000000.bin",
             "./data/datasets/fineweb10B_sp8192/fineweb_train_000001.bin"]
    assert path_hash_seed(paths) == ref(paths)
    assert path_hash_seed(paths) != path_hash_seed(paths[::-1])


def test_default_seed_is_hash_of_sorted_paths_and_hash_dir(shards):
    files, _ = shards
    shuffled = list(files)
    random.Random(3).shuffle(shuffled)
    a = CoprimeLoader(shuffled)
    assert a.seed == path_hash_seed(sorted(str(f) for f in files))
    b = CoprimeLoader(files, hash_dir="./data/datasets/fineweb10B_sp8192")
    assert b.seed == path_hash_seed([f"./data/datasets/fineweb10B_sp8192/{f.name}" for f in sorted(files)])
    assert CoprimeLoader(files, seed=42).seed == 42


# ---- strides and walks ------------------------------------------------------------------------

def test_every_stride_is_coprime_with_its_block_count():
    rng = np.random.Generator(np.random.PCG64(7))
    for n in range(1, 700):
        for _ in range(5):
            s = pick_coprime_stride(rng, n)
            assert math.gcd(s, n) == 1
            assert (s == 1) if n <= 1 else (1 <= s <= n - 1)


def test_walk_is_a_permutation_iff_stride_is_coprime():
    rng = random.Random(11)
    for _ in range(300):
        n = rng.randint(1, 400)
        start = rng.randrange(n)
        stride = rng.randint(1, max(n - 1, 1))
        visited = walk_blocks(start, stride, n).tolist()
        brute = [(start + j * stride) % n for j in range(n)]
        assert visited == brute
        assert (sorted(visited) == list(range(n))) == (math.gcd(stride, n) == 1)


def test_each_shard_walk_is_a_permutation_of_its_blocks(shards):
    files, sizes = shards
    ld = CoprimeLoader(files, seed=5)
    ld.next_batch(6 * L, L)
    for si, n in enumerate(sizes):
        if (n - 1) // L == 0:
            continue
        for _epoch in range(3):
            first = ld.take_blocks(si, 1)
            c = ld.cursor(si)
            if c.next != 1:  # the cursor was mid-walk: finish it, then start a fresh one
                ld.take_blocks(si, c.block_count - c.next)
                first = ld.take_blocks(si, 1)
                c = ld.cursor(si)
            assert c.next == 1 and math.gcd(c.stride, c.block_count) == 1
            assert 0 <= c.phase <= min(L - 1, max(0, n - L - 1))
            assert c.block_count == (n - 1 - c.phase) // L
            rest = ld.take_blocks(si, c.block_count - 1)
            positions = [p for _, p in first + rest]
            assert sorted(positions) == [c.phase + b * L for b in range(c.block_count)]
            assert all(p + L + 1 <= n for p in positions)


def test_strides_stay_coprime_over_many_batches(shards):
    files, _ = shards
    ld = CoprimeLoader(files, seed=9)
    for _ in range(150):
        ld.next_batch(6 * L, L)
    for si in range(len(files)):
        c = ld.cursor(si)
        if c is not None:
            assert math.gcd(c.stride, c.block_count) == 1


# ---- the algorithm against an independent reference ------------------------------------------

def reference_windows(ntoks, seed, local_tokens, W, nbatches, progress_batches=1800):
    """Global window lists of the #1060 loader, written from research/pg_core.md §6.2."""
    rng = np.random.Generator(np.random.PCG64(seed))
    cur: dict[int, list[int]] = {}
    gns = (local_tokens // L) * W
    elig = [i for i, n in enumerate(ntoks) if (n - 1) // L > 0]
    ec = len(elig)
    out = []
    for b in range(nbatches):
        prog = min(b / progress_batches, 1.0)
        rem = [max(cur[si][1] - cur[si][2], 1) if si in cur else (ntoks[si] - 1) // L for si in elig]
        w = np.array(rem, dtype=np.float64) ** (0.9 - 0.4 * prog)
        p = w / w.sum()
        lo, hi = min(max(8, W), ec, gns), min(max(32, 8 * W), ec, gns)
        mix = max(1, min(int(round(lo + prog * (hi - lo))), ec, gns))
        pick = rng.choice(ec, size=mix, replace=False, p=p)
        pc = p[pick] / p[pick].sum()
        cnt = 1 + (rng.multinomial(gns - mix, pc) if gns > mix else np.zeros(mix, dtype=np.int64))
        perm = rng.permutation(mix)
        buckets = []
        for k in perm:
            si, need, got = elig[pick[k]], int(cnt[k]), []
            while need:
                if si not in cur or cur[si][2] >= cur[si][1]:
                    n = ntoks[si]
                    mp = min(L - 1, max(0, n - L - 1))
                    ph = int(rng.integers(mp + 1)) if mp > 0 else 0
                    bc = (n - 1 - ph) // L
                    st = int(rng.integers(bc)) if bc > 1 else 0
                    sd = 1
                    while bc > 1:
                        sd = int(rng.integers(1, bc))
                        if math.gcd(sd, bc) == 1:
                            break
                    cur[si] = [ph, bc, 0, st, sd]
                ph, bc, nx, st, sd = cur[si]
                got.append((si, ph + ((st + nx * sd) % bc) * L))
                cur[si][2] += 1
                need -= 1
            if len(got) > 1:
                got = [got[i] for i in rng.permutation(len(got))]
            buckets.append(got)
        windows, active = [], [i for i, g in enumerate(buckets) if g]
        while active:
            nxt = []
            for o in rng.permutation(len(active)):
                g = buckets[active[o]]
                if g:
                    windows.append(g.pop())
                if g:
                    nxt.append(active[o])
            active = nxt
        out.append(windows)
    return out


@pytest.mark.parametrize("W,progress_batches", [(1, 1800), (1, 12), (2, 12)])
def test_batches_match_independent_reference(many_shards, monkeypatch, W, progress_batches):
    files, sizes = many_shards
    monkeypatch.setattr(loader_module, "PROGRESS_BATCHES", progress_batches)
    local = 24 * L
    ref = reference_windows(sizes, 1234, local, W, 30, progress_batches)
    for rank in range(W):
        ld = CoprimeLoader(files, rank, W, seed=1234)
        for b in range(30):
            x, y = ld.next_batch(local, L)
            assert x.shape == (24, L) and x.dtype == torch.int64
            assert _decode(x) == list(ref[b][rank::W]), f"rank {rank} batch {b}"
            assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)


def test_shard_mix_grows_from_8_to_32(many_shards, monkeypatch):
    files, _ = many_shards
    monkeypatch.setattr(loader_module, "PROGRESS_BATCHES", 10)
    ld = CoprimeLoader(files, seed=3)
    distinct = []
    for _ in range(12):
        x, _ = ld.next_batch(64 * L, L)  # gns = 64 windows
        distinct.append(len({s for s, _ in _decode(x)}))
    assert distinct[0] == 8 and distinct[5] == round(8 + 0.5 * 24) and distinct[10] == 32 and distinct[11] == 32


# ---- determinism, ranks, errors ---------------------------------------------------------------

def test_deterministic_for_its_seed(shards):
    files, _ = shards
    a, b = CoprimeLoader(files), CoprimeLoader(list(reversed(files)))
    c = CoprimeLoader(files, seed=a.seed + 1)
    differs = False
    for _ in range(20):
        xa, ya = a.next_batch(6 * L, L)
        xb, yb = b.next_batch(6 * L, L)
        xc, _ = c.next_batch(6 * L, L)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        differs |= not torch.equal(xa, xc)
    assert differs


def test_ranks_split_one_global_batch(many_shards):
    files, _ = many_shards
    W = 3
    glob = CoprimeLoader(files, 0, W, seed=77)
    ranks = [CoprimeLoader(files, r, W, seed=77) for r in range(W)]
    for _ in range(5):
        xs = [ld.next_batch(5 * L, L)[0] for ld in ranks]
        glob._set_geometry(5 * L, L)
        windows = glob.sample_global_windows()
        glob.batches_built += 1
        for r in range(W):
            assert _decode(xs[r]) == windows[r::W]
        assert len({w for w in windows}) == len(windows)


def test_bad_input_errors(shards, tmp_path):
    files, _ = shards
    with pytest.raises(DataError, match="no training shards"):
        CoprimeLoader([])
    with pytest.raises(DataError, match="rank 2"):
        CoprimeLoader(files, 2, 2)
    ld = CoprimeLoader(files)
    ld.next_batch(6 * L, L)
    with pytest.raises(DataError, match="geometry changed"):
        ld.next_batch(6 * L, 2 * L)
    short = _make_shards(tmp_path / "short", [3, 4])
    with pytest.raises(DataError, match="no shard"):
        CoprimeLoader(short).next_batch(L, L)
    other = CoprimeLoader(files, seed=1)
    with pytest.raises(DataError, match="seed"):
        other.load_state_dict(ld.state_dict())


# ---- resume -----------------------------------------------------------------------------------

def test_state_dict_round_trip_gives_identical_batches(many_shards, monkeypatch):
    files, _ = many_shards
    monkeypatch.setattr(loader_module, "PROGRESS_BATCHES", 15)
    a = CoprimeLoader(files)
    for _ in range(9):
        a.next_batch(16 * L, L)
    b = CoprimeLoader(files)
    b.load_state_dict(a.state_dict())
    for _ in range(25):
        xa, ya = a.next_batch(16 * L, L)
        xb, yb = b.next_batch(16 * L, L)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_resumed_run_sees_the_same_batches_as_an_uninterrupted_one(many_shards, tmp_path, monkeypatch):
    """Two ranks; rank state saved with the core's checkpoint writer and read back (weights_only)."""
    from golf_core.train.checkpoint import load_checkpoint, save_checkpoint

    files, _ = many_shards
    monkeypatch.setattr(loader_module, "PROGRESS_BATCHES", 20)
    W, total, cut = 2, 40, 13
    for rank in range(W):
        full = CoprimeLoader(files, rank, W)
        want = [full.next_batch(12 * L, L) for _ in range(total)]
        first = CoprimeLoader(files, rank, W)
        got = [first.next_batch(12 * L, L) for _ in range(cut)]
        root = tmp_path / f"ckpt{rank}"
        save_checkpoint(root, cut, {"loader": first.state_dict()})
        del first
        state, _, _ = load_checkpoint(root, rank=0, world_size=1)
        resumed = CoprimeLoader(files, rank, W)
        resumed.load_state_dict(state["loader"])
        got += [resumed.next_batch(12 * L, L) for _ in range(total - cut)]
        for i, ((xw, yw), (xg, yg)) in enumerate(zip(want, got)):
            assert torch.equal(xw, xg) and torch.equal(yw, yg), f"rank {rank} batch {i}"


# ---- the plugin -------------------------------------------------------------------------------

def test_plugin_builds_the_loader_from_the_run_context(shards):
    from golf_core.context import RunContext
    from golf_core.data.paths import DataPaths
    from golf_core.recipe import Recipe
    from golf_coprime_loader import plugin as P

    files, _ = shards
    ctx = RunContext(recipe=Recipe(plugins=["coprime-loader"]), plugins=None, rank=0, world_size=1)
    ctx._data = DataPaths(files[0].parent, files[0].parent / "tok.model", list(files), [], "demo", 1024)
    ld = P.golf_make_loader(ctx=ctx, opts=P.CoprimeLoaderOptions(), purpose="train")
    assert isinstance(ld, CoprimeLoader) and ld.seed == path_hash_seed(sorted(str(f) for f in files))
    ld2 = P.golf_make_loader(ctx=ctx, opts=P.CoprimeLoaderOptions(seed=5), purpose="calibration")
    assert ld2.seed == 5
    assert torch.equal(ld.next_batch(6 * L, L)[0], CoprimeLoader(files).next_batch(6 * L, L)[0])
