"""The coprime-stride multi-shard loader of PR #1060 (after #726), exactly (research/pg_core.md §6.2).

One ``numpy.random.Generator(PCG64(seed))``, the same on every rank, draws every global batch:

1. ``progress = min(batches_built / 1800, 1)``; ``alpha = 0.90 - 0.40 * progress``.
2. Each eligible shard (at least one window) weighs ``remaining ** alpha``, where
   ``remaining`` is the blocks left in its walk (at least 1), or all its blocks at phase 0 when
   its cursor was never drawn.
3. ``mix = round(low + progress * (high - low))`` shards, ``low = min(max(8, W), ec, gns)``,
   ``high = min(max(32, 8W), ec, gns)`` (clipped to ``[1, min(ec, gns)]``), are chosen without
   replacement with those weights; each gets ``1 + Multinomial(gns - mix, renormalized weights)``
   windows; the (shard, count) pairs are shuffled.
4. Each chosen shard gives its next ``count`` blocks from its cursor (a new cursor is drawn
   lazily when it has none or its walk is exhausted; see ``cursor.py``), shuffled within the
   shard.
5. The shards' lists are interleaved: rounds visit the non-empty lists in a random order, popping
   the last window of each.
6. Rank ``r`` takes windows ``[r::W]``; a window is ``L + 1`` tokens from ``phase + block*L``,
   ``x = window[:-1]``, ``y = window[1:]``.

``gns = (local_tokens // L) * W`` windows per global batch. Every ``next_batch`` call (one per
micro-step) builds one global batch. ``state_dict()`` captures the generator, every cursor and
``batches_built``: a loader restored from it yields exactly the batches the original would have.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from golf_core.api import DataError, shard_num_tokens, shard_tokens

from .cursor import Cursor, new_cursor
from .seed import hash_strings, path_hash_seed

#: Global batches over which the shard weights flatten and the mix widens.
PROGRESS_BATCHES = 1800
ALPHA_START = 0.90
ALPHA_DROP = 0.40
STATE_VERSION = 1


class CoprimeLoader:
    """Coprime-stride multi-shard loader: ``next_batch(local_tokens, seq_len) -> (x, y)``.

    :param files: training shards (sorted here by their path strings, as the record's glob).
    :param rank: this process's rank; :param world_size: number of ranks.
    :param seed: PCG64 seed; ``None``: :func:`path_hash_seed` of the sorted path strings.
    :param hash_dir: hash ``hash_dir/<name>`` instead of the real paths (see ``seed.py``).
    """

    def __init__(self, files: Sequence[Any], rank: int = 0, world_size: int = 1, *,
                 seed: Optional[int] = None, hash_dir: Optional[str] = None):
        self.files = sorted((Path(f) for f in files), key=str)
        if not self.files:
            raise DataError("coprime-loader: no training shards given")
        if world_size < 1 or not 0 <= rank < world_size:
            raise DataError(f"coprime-loader: rank {rank} outside world size {world_size}")
        self.rank, self.world_size = rank, world_size
        self.seed_from_paths = seed is None
        self.seed = path_hash_seed(hash_strings(self.files, hash_dir)) if seed is None else int(seed)
        self.rng = np.random.Generator(np.random.PCG64(self.seed))
        self.num_tokens = np.array([shard_num_tokens(f) for f in self.files], dtype=np.int64)
        n = len(self.files)
        self.cursor_phase = np.zeros(n, dtype=np.int64)
        self.cursor_block_count = np.zeros(n, dtype=np.int64)
        self.cursor_next = np.zeros(n, dtype=np.int64)
        self.cursor_start = np.zeros(n, dtype=np.int64)
        self.cursor_stride = np.ones(n, dtype=np.int64)
        self.cursor_init = np.zeros(n, dtype=np.bool_)
        self.batches_built = 0
        self.local_tokens: Optional[int] = None
        self.seq_len: Optional[int] = None
        self._eligible = np.zeros(0, dtype=np.int64)
        self._base_block_counts = np.zeros(0, dtype=np.int64)

    # -- geometry ------------------------------------------------------------------------------
    @property
    def num_seqs(self) -> int:
        """Windows per rank per batch."""
        assert self.local_tokens is not None and self.seq_len is not None
        return self.local_tokens // self.seq_len

    @property
    def global_num_seqs(self) -> int:
        """Windows per global batch (``gns``)."""
        return self.num_seqs * self.world_size

    def _set_geometry(self, local_tokens: int, seq_len: int) -> None:
        if self.local_tokens is not None:
            if (local_tokens, seq_len) != (self.local_tokens, self.seq_len):
                raise DataError(
                    f"coprime-loader: batch geometry changed from {self.local_tokens} tokens x seq {self.seq_len} "
                    f"to {local_tokens} x {seq_len}; build a new loader")
            return
        if seq_len < 1 or local_tokens < seq_len:
            raise DataError(f"coprime-loader: a batch of {local_tokens} tokens per rank holds no sequence of length {seq_len}")
        self.local_tokens, self.seq_len = int(local_tokens), int(seq_len)
        self._derive_eligible()

    def _derive_eligible(self) -> None:
        assert self.seq_len is not None
        bbc = (self.num_tokens - 1) // self.seq_len
        self._eligible = np.nonzero(bbc > 0)[0].astype(np.int64)
        self._base_block_counts = bbc[self._eligible].astype(np.int64)
        if self._eligible.size == 0:
            raise DataError(f"coprime-loader: no shard in {self.files[0].parent} holds a window of {self.seq_len + 1} tokens")

    # -- cursors -------------------------------------------------------------------------------
    def cursor(self, si: int) -> Optional[Cursor]:
        """Shard ``si``'s current walk, or None before its first draw."""
        if not self.cursor_init[si]:
            return None
        return Cursor(int(self.cursor_phase[si]), int(self.cursor_block_count[si]), int(self.cursor_start[si]),
                      int(self.cursor_stride[si]), int(self.cursor_next[si]))

    def _reset_cursor(self, si: int) -> None:
        assert self.seq_len is not None
        c = new_cursor(self.rng, int(self.num_tokens[si]), self.seq_len)
        self.cursor_phase[si] = c.phase
        self.cursor_block_count[si] = c.block_count
        self.cursor_next[si] = 0
        self.cursor_start[si] = c.start
        self.cursor_stride[si] = c.stride
        self.cursor_init[si] = True

    def take_blocks(self, si: int, count: int) -> list[tuple[int, int]]:
        """The next ``count`` windows ``(shard, token position)`` of shard ``si``'s walk(s)."""
        assert self.seq_len is not None
        out: list[tuple[int, int]] = []
        rem = count
        while rem > 0:
            if not self.cursor_init[si] or self.cursor_next[si] >= self.cursor_block_count[si]:
                self._reset_cursor(si)
            bc = int(self.cursor_block_count[si])
            ni = int(self.cursor_next[si])
            take = min(rem, bc - ni)
            phase, start, stride = int(self.cursor_phase[si]), int(self.cursor_start[si]), int(self.cursor_stride[si])
            for j in range(ni, ni + take):
                out.append((si, phase + ((start + j * stride) % bc) * self.seq_len))
            self.cursor_next[si] = ni + take
            rem -= take
        return out

    # -- one global batch ----------------------------------------------------------------------
    def sample_global_windows(self) -> list[tuple[int, int]]:
        """Draw the next global batch: ``gns`` windows ``(shard, token position)``, all ranks' together.

        Advances the generator and the cursors but not ``batches_built`` (``next_batch`` does).
        """
        if self.local_tokens is None:
            raise DataError("coprime-loader: call next_batch first (the batch geometry is unknown)")
        rng, gns, W = self.rng, self.global_num_seqs, self.world_size
        ec = int(self._eligible.size)
        progress = min(self.batches_built / float(PROGRESS_BATCHES), 1.0)
        remaining = np.empty(ec, dtype=np.float64)
        for i, si in enumerate(self._eligible.tolist()):
            if self.cursor_init[si]:
                remaining[i] = float(max(int(self.cursor_block_count[si]) - int(self.cursor_next[si]), 1))
            else:
                remaining[i] = float(self._base_block_counts[i])
        weights = np.power(remaining, ALPHA_START - ALPHA_DROP * progress)
        total = float(weights.sum())
        if not np.isfinite(total) or total <= 0.0:
            weights = np.ones(ec, dtype=np.float64)
            total = float(weights.sum())
        probs = weights / total
        low = min(max(8, W), ec, gns)
        high = min(max(32, 8 * W), ec, gns)
        mix = max(1, min(int(round(low + progress * (high - low))), ec, gns))
        chosen = rng.choice(ec, size=mix, replace=False, p=probs)
        shards = self._eligible[chosen]
        p_chosen = probs[chosen].copy()
        p_chosen /= p_chosen.sum()
        counts = np.ones(mix, dtype=np.int64)
        if gns - mix > 0:
            counts += rng.multinomial(gns - mix, p_chosen).astype(np.int64)
        order = rng.permutation(mix)
        shards, counts = shards[order], counts[order]
        buckets: list[list[tuple[int, int]]] = []
        for si, cnt in zip(shards.tolist(), counts.tolist()):
            bucket = self.take_blocks(int(si), int(cnt))
            if bucket:
                if len(bucket) > 1:
                    bucket = [bucket[k] for k in rng.permutation(len(bucket)).tolist()]
                buckets.append(bucket)
        windows: list[tuple[int, int]] = []
        active = [i for i, b in enumerate(buckets) if b]
        while active:
            still = []
            for k in rng.permutation(len(active)).tolist():
                b = buckets[active[k]]
                if b:
                    windows.append(b.pop())
                if b:
                    still.append(active[k])
            active = still
        return windows

    def next_batch(self, local_tokens: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's ``(x, y)``: int64 CPU tensors of shape ``[local_tokens // seq_len, seq_len]``."""
        self._set_geometry(local_tokens, seq_len)
        mine = self.sample_global_windows()[self.rank::self.world_size]
        L = self.seq_len
        assert L is not None
        rows = np.empty((len(mine), L + 1), dtype=np.int64)
        for r, (si, pos) in enumerate(mine):
            rows[r] = shard_tokens(self.files[si])[pos: pos + L + 1]
        self.batches_built += 1
        t = torch.from_numpy(rows)
        return t[:, :-1].contiguous(), t[:, 1:].contiguous()

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The full position: generator, cursors, ``batches_built``, geometry (tensors + plain values)."""
        return {
            "version": STATE_VERSION,
            "files": [f.name for f in self.files],
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "batches_built": self.batches_built,
            "local_tokens": self.local_tokens,
            "seq_len": self.seq_len,
            "cursor_phase": torch.from_numpy(self.cursor_phase.copy()),
            "cursor_block_count": torch.from_numpy(self.cursor_block_count.copy()),
            "cursor_next": torch.from_numpy(self.cursor_next.copy()),
            "cursor_start": torch.from_numpy(self.cursor_start.copy()),
            "cursor_stride": torch.from_numpy(self.cursor_stride.copy()),
            "cursor_init": torch.from_numpy(self.cursor_init.copy()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where :meth:`state_dict` was taken (same shards, seed and ranks)."""
        names = [f.name for f in self.files]
        if list(state.get("files", [])) != names:
            raise DataError("coprime-loader: the checkpoint was taken over a different list of training shards")
        if int(state["seed"]) != self.seed:
            raise DataError(f"coprime-loader: the checkpoint was taken with seed {state['seed']}, this loader has {self.seed}")
        if (int(state["rank"]), int(state["world_size"])) != (self.rank, self.world_size):
            raise DataError(
                f"coprime-loader: the checkpoint is rank {state['rank']} of {state['world_size']}, "
                f"this loader is rank {self.rank} of {self.world_size}")
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.batches_built = int(state["batches_built"])
        for key in ("cursor_phase", "cursor_block_count", "cursor_next", "cursor_start", "cursor_stride", "cursor_init"):
            arr = np.asarray(state[key].numpy() if isinstance(state[key], torch.Tensor) else state[key])
            setattr(self, key, arr.astype(getattr(self, key).dtype, copy=True))
        self.local_tokens = None if state["local_tokens"] is None else int(state["local_tokens"])
        self.seq_len = None if state["seq_len"] is None else int(state["seq_len"])
        if self.seq_len is not None:
            self._derive_eligible()
