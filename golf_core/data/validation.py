"""The validation token stream exactly as the challenge loads it (pg_core.md §3.4)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from golf_core.data.shards import read_shard
from golf_core.errors import DataError


def load_validation_tokens(val_files: Sequence, seq_len: int, max_tokens: Optional[int] = None) -> torch.Tensor:
    """Concatenate the validation shards (sorted by name) and keep
    ``tokens[: ((N - 1) // seq_len) * seq_len + 1]``, as the challenge does.

    ``max_tokens`` (tests, ``--tiny``) truncates the stream to its first ``max_tokens`` tokens
    before that rounding. Returns an int64 tensor. DataError when there are no shards or the
    stream is shorter than one sequence.
    """
    files = sorted((Path(f) for f in val_files), key=lambda p: p.name)
    if not files:
        raise DataError("no validation shards given")
    if seq_len < 1:
        raise DataError(f"seq_len must be positive, got {seq_len}")
    parts = []
    remaining = max_tokens
    for f in files:
        tokens = read_shard(f)
        if remaining is not None:
            tokens = tokens[:remaining]
            remaining -= tokens.shape[0]
        parts.append(np.asarray(tokens, dtype=np.int64))
        if remaining is not None and remaining <= 0:
            break
    stream = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    usable = ((stream.shape[0] - 1) // seq_len) * seq_len
    if usable <= 0:
        raise DataError(f"validation split is too short for seq_len={seq_len}: "
                        f"{stream.shape[0]} tokens in {files[0].parent}")
    return torch.from_numpy(stream[: usable + 1].copy())


def load_validation_bytes(byte_files: Sequence, num_tokens: int) -> np.ndarray:
    """The first ``num_tokens`` counts of the validation byte sidecars (CaseOps
    ``fineweb_val_bytes_*.bin``, sorted by name): one per token of the stream that
    ``load_validation_tokens`` returns. DataError when they hold fewer counts."""
    files = sorted((Path(f) for f in byte_files), key=lambda p: p.name)
    parts, have = [], 0
    for f in files:
        if have >= num_tokens:
            break
        counts = read_shard(f)[: num_tokens - have]
        parts.append(np.asarray(counts, dtype=np.int64))
        have += counts.shape[0]
    if have < num_tokens:
        where = files[0].parent if files else "the dataset"
        raise DataError(f"byte sidecars in {where} hold {have} counts for {num_tokens} validation tokens")
    return np.concatenate(parts)
