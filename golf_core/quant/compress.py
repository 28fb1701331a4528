"""Compressors (zlib level 9, lzma preset 6, brotli quality 11) and the core's compress codec.

A *codec* name is the compressor's name, prefixed by ``bshf<stride>+`` when the bytes were
byte-shuffled first: ``"zlib"``, ``"bshf2+brotli"``. It is stored in the artifact header and is
all :func:`decompress_bytes` needs.
"""
from __future__ import annotations

import lzma
import zlib
from typing import Callable, NamedTuple, Optional

import brotli

from ..errors import ArtifactError, GolfError
from .shuffle import byte_shuffle, byte_unshuffle


class Compressor(NamedTuple):
    """A named pair of byte functions."""

    name: str
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]


def _lzma_compress(data: bytes) -> bytes:
    return lzma.compress(data, preset=6)


def _zlib_compress(data: bytes) -> bytes:
    return zlib.compress(data, level=9)


def _brotli_compress(data: bytes) -> bytes:
    return brotli.compress(data, quality=11)


#: name -> Compressor. zlib level 9 (baseline), lzma preset 6 and brotli quality 11 (#1394).
COMPRESSORS: dict[str, Compressor] = {
    "zlib": Compressor("zlib", _zlib_compress, zlib.decompress),
    "lzma": Compressor("lzma", _lzma_compress, lzma.decompress),
    "brotli": Compressor("brotli", _brotli_compress, brotli.decompress),
}


def get_compressor(name: str) -> Compressor:
    """The compressor called ``name``; ``GolfError`` naming the known ones otherwise."""
    try:
        return COMPRESSORS[name]
    except KeyError:
        raise GolfError(f"unknown compressor {name!r}; known: {', '.join(COMPRESSORS)}") from None


def compress(data: bytes, name: str = "zlib") -> bytes:
    """Compress ``data`` with the compressor called ``name`` (no shuffle, no codec prefix)."""
    return get_compressor(name).compress(data)


def decompress(data: bytes, name: str = "zlib", max_bytes: Optional[int] = None) -> bytes:
    """Decompress with the compressor called ``name``; ``ArtifactError`` for corrupt data.

    With ``max_bytes`` the output is produced by a streaming decoder that stops one byte past the
    limit (``golf_core.quant.bounded``), so a decompression bomb costs ``max_bytes`` of memory, not
    what it expands to, and is refused with one line.
    """
    comp = get_compressor(name)
    if max_bytes is not None:
        from .bounded import bounded_decompress

        return bounded_decompress(data, name, max_bytes)
    try:
        return comp.decompress(data)
    except Exception as e:  # zlib.error, lzma.LZMAError, brotli.error
        raise ArtifactError(f"{name} payload does not decompress: {e}") from None


def codec_name(compressor: str, byte_shuffle_stride: int = 0) -> str:
    """The codec string for a compressor and an optional shuffle stride (0 or 1: none)."""
    get_compressor(compressor)
    return f"bshf{byte_shuffle_stride}+{compressor}" if byte_shuffle_stride > 1 else compressor


def parse_codec(codec: str) -> tuple[str, int]:
    """``"bshf2+brotli"`` -> ``("brotli", 2)``; ``"zlib"`` -> ``("zlib", 0)``.
    Raises ``ArtifactError`` for a codec the core does not know."""
    stride = 0
    name = codec
    if codec.startswith("bshf") and "+" in codec:
        head, name = codec.split("+", 1)
        if not head[4:].isdigit() or not 2 <= int(head[4:]) <= 255:
            raise ArtifactError(f"unknown compression codec {codec!r}")
        stride = int(head[4:])
    if name not in COMPRESSORS:
        raise ArtifactError(f"unknown compression codec {codec!r} (compressors: {', '.join(COMPRESSORS)})")
    return name, stride


def compress_bytes(data: bytes, compressor: str = "zlib", byte_shuffle_stride: int = 0) -> tuple[str, bytes]:
    """Byte-shuffle (when ``byte_shuffle_stride > 1``) then compress: ``(codec, compressed)``."""
    comp = get_compressor(compressor)
    if byte_shuffle_stride > 1:
        data = byte_shuffle(data, byte_shuffle_stride)
    return codec_name(compressor, byte_shuffle_stride), comp.compress(data)


def decompress_bytes(codec: str, data: bytes, max_bytes: Optional[int] = None) -> bytes:
    """Invert :func:`compress_bytes`; ``ArtifactError`` for an unknown codec, corrupt data or (with
    ``max_bytes``) an output larger than ``max_bytes``."""
    name, stride = parse_codec(codec)
    out = decompress(data, name, max_bytes)
    return byte_unshuffle(out) if stride > 1 else out
