"""The challenge's token shard format, bit for bit (research/pg_core.md §2.1).

A shard is a header of 256 little-endian int32 (1024 bytes): ``[20240520, 1, num_tokens, 0, ...]``,
followed by ``num_tokens`` little-endian uint16 token ids. Readers check the header size, the magic,
the version and the file size, and name the file on any mismatch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from golf_core.errors import ShardError

MAGIC = 20240520
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
TOKEN_BYTES = 2
MAX_TOKENS = 2**31 - 1

PathLike = Union[str, "os.PathLike[str]"]


def write_shard(path: PathLike, tokens) -> Path:
    """Write ``tokens`` (any integer array-like, ids in [0, 65536)) as a shard at ``path``.

    Raises ShardError when there are 2**31 tokens or more, or an id does not fit in uint16.
    Returns the path written.
    """
    path = Path(path)
    arr = np.asarray(tokens)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.size > MAX_TOKENS:
        raise ShardError(f"{path}: {arr.size} tokens is too many for one shard (limit 2**31 - 1)")
    if arr.dtype != np.uint16:
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ShardError(f"{path}: token ids must be integers, got dtype {arr.dtype}")
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= 2**16):
            raise ShardError(f"{path}: token ids must lie in [0, 65536) to fit uint16 shards")
    body = arr.astype("<u2", copy=False)
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[0] = MAGIC
    header[1] = VERSION
    header[2] = body.size
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(body.tobytes())
    return path


def _check_header(path: Path) -> int:
    """Validate the header and file size of the shard at ``path``; return its token count."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ShardError(f"{path}: shard file does not exist") from None
    if size < HEADER_BYTES:
        raise ShardError(
            f"{path}: truncated shard: {size} bytes is shorter than the {HEADER_BYTES}-byte header")
    header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    if header.size != HEADER_INTS:
        raise ShardError(f"{path}: could not read the {HEADER_INTS}-int header")
    if int(header[0]) != MAGIC:
        raise ShardError(f"{path}: wrong magic {int(header[0])} (expected {MAGIC}); not a token shard")
    if int(header[1]) != VERSION:
        raise ShardError(f"{path}: unsupported shard version {int(header[1])} (expected {VERSION})")
    n = int(header[2])
    if n < 0:
        raise ShardError(f"{path}: negative token count {n} in header")
    expected = HEADER_BYTES + TOKEN_BYTES * n
    if size != expected:
        what = "truncated shard" if size < expected else "shard has trailing bytes"
        raise ShardError(
            f"{path}: {what}: header says {n} tokens ({expected} bytes) but the file has {size} bytes")
    return n


def num_tokens(path: PathLike) -> int:
    """Token count of the shard at ``path`` (header and file size are checked)."""
    return _check_header(Path(path))


def read_shard(path: PathLike) -> np.memmap:
    """Memory-map the tokens of the shard at ``path`` as a read-only uint16 array.

    Raises ShardError naming the file when it is missing, truncated, has trailing bytes,
    the wrong magic or the wrong version.
    """
    path = Path(path)
    n = _check_header(path)
    if n == 0:
        return np.zeros(0, dtype=np.uint16)  # np.memmap refuses zero-length maps
    return np.memmap(path, dtype="<u2", mode="r", offset=HEADER_BYTES, shape=(n,))
