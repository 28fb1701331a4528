"""The loader's seed: an FNV-style hash of the sorted shard path strings (research/pg_core.md §6.2).

``seed = 0; for each path, for each UTF-8 byte b: seed = ((seed ^ b) * 1099511628211) mod 2**64``.
This is FNV-1a's 64-bit prime with a zero offset basis (not FNV's 14695981039346656037), over
the concatenated bytes of the paths in sorted order. Every rank computes the same seed, so every
rank builds the same global batch. The seed depends on the literal path strings: the record
run as ``./data/datasets/...`` and as ``../../../data/datasets/...`` reads different orders.
"""
from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Iterable, Optional, Sequence

#: FNV-1a's 64-bit prime.
FNV_PRIME = 1099511628211
_MASK64 = (1 << 64) - 1


def path_hash_seed(paths: Iterable[str]) -> int:
    """The hash of ``paths`` (strings, in the given order) as the record computes it."""
    seed = 0
    for p in paths:
        for b in str(p).encode("utf-8"):
            seed = ((seed ^ b) * FNV_PRIME) & _MASK64
    return seed


def hash_strings(files: Sequence[Path], hash_dir: Optional[str] = None) -> list[str]:
    """The strings hashed for ``files``: each path as given, or ``hash_dir/<file name>``.

    ``hash_dir`` lets a run reproduce another machine's order, e.g.
    ``"./data/datasets/fineweb10B_sp8192"`` for the record's default ``DATA_PATH``.
    """
    if hash_dir is None:
        return [str(f) for f in files]
    return [posixpath.join(hash_dir, Path(f).name) for f in files]
