"""The token sequences pre-quant TTT trains on.

* validation (#1306/#1423): the stream cut into non-overlapping ``seq_len`` sequences; rank ``r``
  takes the contiguous slice ``[n r / W, n (r+1) / W)`` of the ``n = (N - 1) // seq_len`` sequences.
* training slice (#1554's legal variant): the last ``num_tokens`` (+1) tokens of one training
  shard (default the last shard in sorted order), cut the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch


def rank_sequences(tokens: torch.Tensor, seq_len: int, rank: int = 0, world_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's share ``(x, y)`` (each ``[n_r, seq_len]``, int64) of the non-overlapping sequences of ``tokens``."""
    tokens = tokens.reshape(-1).to(torch.int64)
    n = (tokens.numel() - 1) // seq_len
    a, b = n * rank // world_size, n * (rank + 1) // world_size
    if b <= a:
        empty = tokens.new_zeros((0, seq_len))
        return empty, empty
    span = tokens[a * seq_len: b * seq_len + 1]
    return span[:-1].reshape(-1, seq_len), span[1:].reshape(-1, seq_len)


def training_slice(train_files: Sequence, num_tokens: int, shard: int = -1) -> torch.Tensor:
    """The last ``num_tokens + 1`` tokens (fewer if the shard is shorter) of training shard
    ``shard`` (index into the files sorted by name; negative counts from the end), as int64."""
    from golf_core.api import DataError, read_window, shard_tokens

    files = sorted((Path(f) for f in train_files), key=lambda p: p.name)
    if not files:
        raise DataError("prequant-ttt: no training shards to take a slice from")
    try:
        path = files[shard]
    except IndexError:
        raise DataError(f"prequant-ttt: train_shard {shard} is out of range for {len(files)} training shards") from None
    tokens = shard_tokens(path)
    n = min(int(num_tokens) + 1, int(tokens.shape[0]))
    return read_window(tokens, int(tokens.shape[0]) - n, n)
