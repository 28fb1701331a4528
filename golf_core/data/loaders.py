"""The baseline's training-data loader (``TokenStream`` + ``DistributedTokenLoader``, pg_core.md §4.6)
and a helper that reads a window of tokens from a memory-mapped shard.

Shards are read in sorted order and wrap around forever. Each ``next_batch`` call takes
``(local_tokens + 1) * world_size`` contiguous tokens from the shared stream; rank ``r`` keeps
the span ``[r * (local_tokens + 1), (r + 1) * (local_tokens + 1))`` and returns ``x = span[:-1]``,
``y = span[1:]`` reshaped to ``[local_tokens // seq_len, seq_len]``. No shuffling.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from golf_core.data.shards import read_shard
from golf_core.errors import DataError


@lru_cache(maxsize=64)
def _mapped(path: str, identity: tuple) -> np.ndarray:
    return read_shard(path)


def shard_tokens(path) -> np.ndarray:
    """The memory-mapped uint16 tokens of a shard (cached per file identity, header checked once)."""
    path = Path(path)
    try:
        st = path.stat()
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        identity = ()
    return _mapped(str(path), identity)


def read_window(shard, start: int, length: int) -> torch.Tensor:
    """``length`` tokens of a shard from ``start`` as an int64 tensor (shorter at the shard's end).

    ``shard`` is a path or an array returned by ``read_shard``/``shard_tokens``.
    """
    tokens = shard if isinstance(shard, np.ndarray) else shard_tokens(shard)
    if start < 0 or length < 0:
        raise ValueError(f"bad window start={start} length={length}")
    return torch.from_numpy(np.asarray(tokens[start: start + length], dtype=np.int64))


class SequentialLoader:
    """The baseline's deterministic loader: shards in sorted order, wrapping, no shuffling.

    ``state_dict()``/``load_state_dict()`` capture the stream position for exact resume.
    """

    def __init__(self, files: Sequence, rank: int = 0, world_size: int = 1):
        self.files = sorted((Path(f) for f in files), key=lambda p: p.name)
        if not self.files:
            raise DataError("SequentialLoader: no training shards given")
        if not 0 <= rank < world_size:
            raise DataError(f"SequentialLoader: rank {rank} outside world size {world_size}")
        self.rank = rank
        self.world_size = world_size
        self.file_idx = 0
        self.pos = 0
        self._tokens = shard_tokens(self.files[0])

    def _advance_file(self) -> None:
        self.file_idx = (self.file_idx + 1) % len(self.files)
        self._tokens = shard_tokens(self.files[self.file_idx])
        self.pos = 0

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` tokens of the shared stream (crossing and wrapping shards) as int64."""
        chunks = []
        remaining = n
        empty_in_a_row = 0
        while remaining > 0:
            avail = self._tokens.shape[0] - self.pos
            if avail <= 0:
                empty_in_a_row += 1
                if empty_in_a_row > len(self.files):
                    raise DataError(f"training shards in {self.files[0].parent} hold no tokens")
                self._advance_file()
                continue
            empty_in_a_row = 0
            k = min(remaining, avail)
            chunks.append(np.asarray(self._tokens[self.pos: self.pos + k], dtype=np.int64))
            self.pos += k
            remaining -= k
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def next_batch(self, local_tokens: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's ``(x, y)``: int64 CPU tensors of shape ``[local_tokens // seq_len, seq_len]``."""
        if seq_len < 1 or local_tokens < seq_len:
            raise DataError(f"a batch of {local_tokens} tokens per rank holds no sequence of length {seq_len}")
        span = local_tokens + 1
        chunk = self.take(span * self.world_size)
        local = chunk[self.rank * span: (self.rank + 1) * span]
        n = (local_tokens // seq_len) * seq_len
        x = torch.from_numpy(local[:n].copy()).view(-1, seq_len)
        y = torch.from_numpy(local[1: n + 1].copy()).view(-1, seq_len)
        return x, y

    def state_dict(self) -> dict:
        """The stream position: ``{"file_idx", "pos", "files"}`` (file names for a sanity check)."""
        return {"file_idx": self.file_idx, "pos": self.pos, "files": [p.name for p in self.files]}

    def load_state_dict(self, state: dict) -> None:
        """Resume exactly where ``state_dict()`` was taken (same shard list required)."""
        names = [p.name for p in self.files]
        if state.get("files", names) != names:
            raise DataError("loader checkpoint was taken over a different list of training shards")
        self.file_idx = int(state["file_idx"])
        self._tokens = shard_tokens(self.files[self.file_idx])
        self.pos = int(state["pos"])
