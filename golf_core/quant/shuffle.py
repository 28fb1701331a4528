"""BSHF byte shuffle (research/pg_core.md §5.8, techniques.md §12).

``byte_shuffle(src, 2) == b"BSHF" + bytes([2]) + src[0::2] + src[1::2]``: byte planes, so the low
and high bytes of fp16 values sit apart and the compressor sees two smoother streams. For a
general stride ``s`` the planes ``src[0::s], src[1::s], ..., src[s-1::s]`` follow the header.
"""
from __future__ import annotations

import numpy as np

from ..errors import ArtifactError

#: Header magic of a shuffled buffer.
BSHF_MAGIC = b"BSHF"


def byte_shuffle(data: bytes, stride: int = 2) -> bytes:
    """Shuffle ``data`` into ``stride`` byte planes behind the 5-byte header ``BSHF`` + stride."""
    if not 1 <= stride <= 255:
        raise ValueError(f"stride must be in 1..255, got {stride}")
    src = np.frombuffer(data, dtype=np.uint8)
    planes = [src[i::stride] for i in range(stride)]
    return BSHF_MAGIC + bytes([stride]) + np.concatenate(planes).tobytes()


def byte_unshuffle(data: bytes) -> bytes:
    """Invert :func:`byte_shuffle`; raises ``ArtifactError`` when the BSHF header is missing."""
    if len(data) < 5 or data[:4] != BSHF_MAGIC or data[4] == 0:
        raise ArtifactError("byte-shuffled payload has no valid BSHF header")
    stride = data[4]
    src = np.frombuffer(data, dtype=np.uint8, offset=5)
    n = len(src)
    out = np.empty(n, dtype=np.uint8)
    pos = 0
    for i in range(stride):
        count = len(range(i, n, stride))
        out[i::stride] = src[pos:pos + count]
        pos += count
    return out.tobytes()
