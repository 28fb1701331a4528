"""PR #1530's ``DocumentPackingLoader``: contiguous packed rows that start at a document.

* Shards are read in sorted order (by path string), wrapping around forever; nothing is shuffled.
* When a shard is opened, the cursor moves to its first BOS (position 0 when it has none).
* Each ``next_batch(local_tokens, seq_len)`` takes a global span of ``W * (local_tokens + 1)``
  tokens at the cursor; rank ``r`` keeps ``[cursor + r*(local_tokens+1), ... + local_tokens+1)``
  and returns ``x = span[:-1]``, ``y = span[1:]`` as ONE row ``[1, local_tokens]``; the cursor
  advances by the global span. When the span does not fit in what is left of the shard, the rest
  of the shard is skipped and the next shard is opened.
* ``seq_len`` is not a row length here: the model's document mask cuts segments at BOS and every
  ``seq_len`` tokens (``golf_core.api.DocumentMask``).

``state_dict()``/``load_state_dict()`` hold the shard index and the cursor, for exact resume.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from golf_core.api import DataError, bos_positions, shard_num_tokens, shard_tokens

STATE_VERSION = 1


class DocumentPackingLoader:
    """``next_batch(local_tokens, seq_len) -> (x, y)``, each ``[1, local_tokens]`` int64 (see the module docstring).

    :param files: every training shard; :param rank: this process's rank; :param world_size: ranks.
    :param bos_id: the token that starts a document.
    """

    def __init__(self, files: Sequence[Any], rank: int = 0, world_size: int = 1, *, bos_id: int = 1):
        if world_size < 1 or not 0 <= rank < world_size:
            raise DataError(f"varlen-attn loader: rank {rank} outside world size {world_size}")
        self.files = sorted((Path(f) for f in files), key=str)
        if not self.files:
            raise DataError("varlen-attn loader: no training shards given")
        self.rank, self.world_size, self.bos_id = rank, world_size, int(bos_id)
        self.sizes = [shard_num_tokens(f) for f in self.files]
        self._open(0)

    def _open(self, file_idx: int) -> None:
        self.file_idx = file_idx
        self.tokens = shard_tokens(self.files[file_idx])
        bos = bos_positions(self.tokens, self.bos_id)
        self.cursor = int(bos[0]) if bos.size else 0

    def next_batch(self, local_tokens: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's packed row ``(x, y)`` of ``local_tokens`` tokens (``seq_len`` is unused here)."""
        if local_tokens < 1:
            raise DataError(f"varlen-attn loader: a batch of {local_tokens} tokens per rank is empty")
        span = local_tokens + 1
        global_span = span * self.world_size
        if max(self.sizes) < global_span:
            raise DataError(
                f"varlen-attn loader: no training shard in {self.files[0].parent} holds a global span of "
                f"{global_span} tokens (largest has {max(self.sizes)})")
        while self.cursor + global_span > self.tokens.shape[0]:
            self._open((self.file_idx + 1) % len(self.files))
        start = self.cursor + self.rank * span
        buf = np.asarray(self.tokens[start: start + span], dtype=np.int64)
        self.cursor += global_span
        x = torch.from_numpy(buf[:-1].copy()).view(1, -1)
        y = torch.from_numpy(buf[1:].copy()).view(1, -1)
        return x, y

    def state_dict(self) -> dict:
        """``{"version", "file_idx", "cursor", "files"}`` (file names for a sanity check)."""
        return {"version": STATE_VERSION, "file_idx": self.file_idx, "cursor": self.cursor,
                "files": [p.name for p in self.files]}

    def load_state_dict(self, state: dict) -> None:
        """Resume exactly where ``state_dict()`` was taken (same shard list required)."""
        names = [p.name for p in self.files]
        if state.get("files", names) != names:
            raise DataError("varlen-attn loader: checkpoint was taken over a different list of training shards")
        if state.get("version") != STATE_VERSION:
            raise DataError(f"varlen-attn loader: checkpoint state version {state.get('version')!r}, expected {STATE_VERSION}")
        self._open(int(state["file_idx"]))
        self.cursor = int(state["cursor"])
