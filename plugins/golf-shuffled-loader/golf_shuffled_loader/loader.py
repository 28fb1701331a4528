"""PR #1394's ``ShuffledSequenceLoader`` (research/pg_core.md §5.6), with exact resume.

* Rank ``r`` of ``W`` owns the shards ``sorted(files)[r::W]`` (128 shards: 16 per rank on 8 GPUs).
* Its generator is ``numpy.random.Generator(PCG64(rank))``: **not seeded by the run's seed**,
  so every seed of the record trains on the same data order (``seed`` below changes that).
* Each shard gets a random phase ``p ~ U{0..min(L-1, max(0, n-L-1))}`` (0 when that bound is not
  positive) and a random permutation of its ``(n - 1 - p) // L`` windows starting at ``p + k*L``;
  all shards are drawn in order when the loader starts.
* Each row of a batch picks a shard with probability proportional to the windows it has left
  (``rng.choice``) and takes the last window of its list: sampling without replacement across the
  rank's shards. When every shard is empty, all are re-drawn (new phases and permutations).
* A window is ``L + 1`` tokens, ``x = window[:-1]``, ``y = window[1:]``.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from golf_core.api import DataError, shard_num_tokens, shard_tokens

STATE_VERSION = 1


def make_rng(rank: int, seed: Optional[int] = None) -> np.random.Generator:
    """``PCG64(rank)`` as #1394 (``seed=None``), else ``PCG64([seed, rank])``."""
    return np.random.Generator(np.random.PCG64(rank if seed is None else [int(seed), int(rank)]))


class ShuffledSequenceLoader:
    """#1394's loader: ``next_batch(local_tokens, seq_len) -> (x, y)`` over this rank's shards.

    :param files: every training shard (sorted here by path string, as the record's glob).
    :param rank: this process's rank; :param world_size: number of ranks.
    :param seq_len: window length; when None, fixed by the first ``next_batch`` (the shards are
        drawn then, before any batch, exactly as the record draws them at construction).
    :param seed: None: ``PCG64(rank)`` (the record); an int: ``PCG64([seed, rank])``.
    """

    def __init__(self, files: Sequence[Any], rank: int = 0, world_size: int = 1, *,
                 seq_len: Optional[int] = None, seed: Optional[int] = None):
        if world_size < 1 or not 0 <= rank < world_size:
            raise DataError(f"shuffled-loader: rank {rank} outside world size {world_size}")
        all_files = sorted((Path(f) for f in files), key=str)
        if not all_files:
            raise DataError("shuffled-loader: no training shards given")
        self.files = all_files[rank::world_size]
        if not self.files:
            raise DataError(
                f"shuffled-loader: {len(all_files)} training shards cannot feed {world_size} ranks (rank {rank} gets none)")
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.rng = make_rng(rank, seed)
        self.num_tokens = [shard_num_tokens(f) for f in self.files]
        self.start_inds: list[list[int]] = [[] for _ in self.files]
        self.seq_len: Optional[int] = None
        if seq_len is not None:
            self._start(seq_len)

    def _start(self, seq_len: int) -> None:
        if seq_len < 1:
            raise DataError(f"shuffled-loader: bad seq_len {seq_len}")
        self.seq_len = int(seq_len)
        if all((n - 1) // self.seq_len == 0 for n in self.num_tokens):
            raise DataError(
                f"shuffled-loader: no shard of rank {self.rank} in {self.files[0].parent} holds a window of {self.seq_len + 1} tokens")
        for si in range(len(self.files)):
            self._reset_shard(si)

    def _reset_shard(self, si: int) -> None:
        assert self.seq_len is not None
        L, n = self.seq_len, self.num_tokens[si]
        max_phase = min(L - 1, max(0, n - L - 1))
        phase = int(self.rng.integers(max_phase + 1)) if max_phase > 0 else 0
        order = self.rng.permutation((n - 1 - phase) // L)
        self.start_inds[si] = (phase + order * L).tolist()

    def remaining(self) -> list[int]:
        """Windows left in each of this rank's shards before the next re-draw."""
        return [len(s) for s in self.start_inds]

    def next_starts(self, rows: int) -> list[tuple[int, int]]:
        """Draw the next ``rows`` windows as ``(shard index within this rank, token position)``."""
        if self.seq_len is None:
            raise DataError("shuffled-loader: the window length is unknown; call next_batch first")
        remaining = np.array([len(s) for s in self.start_inds], dtype=np.float64)
        out = []
        for _ in range(rows):
            total = remaining.sum()
            if total <= 0:
                for si in range(len(self.files)):
                    self._reset_shard(si)
                remaining = np.array([len(s) for s in self.start_inds], dtype=np.float64)
                total = remaining.sum()
            si = int(self.rng.choice(len(self.files), p=remaining / total))
            out.append((si, self.start_inds[si].pop()))
            remaining[si] -= 1
        return out

    def next_batch(self, local_tokens: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's ``(x, y)``: int64 CPU tensors of shape ``[local_tokens // seq_len, seq_len]``."""
        if self.seq_len is None:
            self._start(seq_len)
        elif seq_len != self.seq_len:
            raise DataError(f"shuffled-loader: seq_len changed from {self.seq_len} to {seq_len}; build a new loader")
        rows = local_tokens // seq_len
        if rows < 1:
            raise DataError(f"shuffled-loader: a batch of {local_tokens} tokens per rank holds no sequence of length {seq_len}")
        L = self.seq_len
        assert L is not None
        out = np.empty((rows, L + 1), dtype=np.int64)
        for r, (si, start) in enumerate(self.next_starts(rows)):
            out[r] = shard_tokens(self.files[si])[start: start + L + 1]
        t = torch.from_numpy(out)
        return t[:, :-1].contiguous(), t[:, 1:].contiguous()

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The full position: generator state and the windows left in every shard."""
        return {
            "version": STATE_VERSION,
            "files": [f.name for f in self.files],
            "rank": self.rank,
            "world_size": self.world_size,
            "seed": self.seed,
            "seq_len": self.seq_len,
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "start_inds": [torch.tensor(s, dtype=torch.int64) for s in self.start_inds],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where :meth:`state_dict` was taken (same shards, rank and seed)."""
        if list(state.get("files", [])) != [f.name for f in self.files]:
            raise DataError("shuffled-loader: the checkpoint was taken over a different list of training shards")
        if (int(state["rank"]), int(state["world_size"])) != (self.rank, self.world_size):
            raise DataError(
                f"shuffled-loader: the checkpoint is rank {state['rank']} of {state['world_size']}, "
                f"this loader is rank {self.rank} of {self.world_size}")
        if state.get("seed") != self.seed:
            raise DataError(f"shuffled-loader: the checkpoint was taken with seed {state.get('seed')}, this loader has {self.seed}")
        self.seq_len = None if state["seq_len"] is None else int(state["seq_len"])
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.start_inds = [
            (s.tolist() if isinstance(s, torch.Tensor) else [int(v) for v in s]) for s in state["start_inds"]
        ]
