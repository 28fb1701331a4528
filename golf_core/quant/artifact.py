"""``artifact.bin``: the versioned container of a compressed quantized model.

Layout (all integers little-endian)::

    magic            8 bytes  b"GOLFART\\x00"
    format version   u32      ARTIFACT_VERSION (1)
    header length    u32
    payload length   u64
    header           UTF-8 JSON: {"codec", "model", "plugins", "extra"}
    payload          the compressed serialized QuantizedModel
    checksum         32 bytes, sha256 of every byte before it

The header says how the payload was compressed (``codec``), the model config and the plugins
(name, version, options) needed to rebuild the model. Reading checks magic, version, length and
checksum, and only ever parses JSON and copies bytes: a crafted file cannot run code. Every
problem raises ``ArtifactError`` with one line naming the file.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from ..errors import ArtifactError
from .compress import compress_bytes, decompress_bytes
from .quantized import QuantizedModel
from .serialize import deserialize_quantized, serialize_quantized

#: First 8 bytes of every artifact.
ARTIFACT_MAGIC = b"GOLFART\x00"
#: The container version this code writes and reads.
ARTIFACT_VERSION = 1
#: Largest artifact file golf reads (64x the challenge's 16 MB cap): a bound on untrusted input.
MAX_ARTIFACT_BYTES = 1 << 30
_PREFIX = struct.Struct("<8sIIQ")
_DIGEST = 32


@dataclass
class Artifact:
    """The decoded container: compression ``codec``, compressed ``payload`` and plain metadata.

    ``model``: the model config (JSON-able), ``plugins``: ``[{"name", "version", "options"}]`` in
    recipe order, ``extra``: anything else JSON-able (golf version, recipe hash, quant summary).
    """

    codec: str
    payload: bytes
    model: dict[str, Any] = field(default_factory=dict)
    plugins: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = ARTIFACT_VERSION

    def header(self) -> dict[str, Any]:
        """The JSON header as a dict."""
        return {"codec": self.codec, "model": self.model, "plugins": self.plugins, "extra": self.extra}


def pack_artifact(art: Artifact) -> bytes:
    """The bytes of ``art`` (module docstring). Deterministic for the same input."""
    try:
        header = json.dumps(art.header(), separators=(",", ":"), ensure_ascii=True,
                            allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise ArtifactError(f"artifact header is not JSON-able: {e}") from None
    body = _PREFIX.pack(ARTIFACT_MAGIC, ARTIFACT_VERSION, len(header), len(art.payload)) + header + art.payload
    return body + hashlib.sha256(body).digest()


def unpack_artifact(data: bytes, source: str = "artifact") -> Artifact:
    """Parse and verify artifact bytes; ``source`` names the file in error messages."""
    n = len(data)
    if n < len(ARTIFACT_MAGIC):
        raise ArtifactError(f"{source} is truncated: {n} bytes, not even the magic")
    if data[:len(ARTIFACT_MAGIC)] != ARTIFACT_MAGIC:
        raise ArtifactError(f"{source} is not a golf artifact (bad magic {bytes(data[:8])!r})")
    if n < _PREFIX.size + _DIGEST:
        raise ArtifactError(f"{source} is truncated: {n} bytes, shorter than the fixed header")
    _, version, hlen, plen = _PREFIX.unpack_from(data)
    if version != ARTIFACT_VERSION:
        raise ArtifactError(
            f"{source} has artifact format version {version}; this golf reads version {ARTIFACT_VERSION}"
        )
    expected = _PREFIX.size + hlen + plen + _DIGEST
    if hashlib.sha256(data[:-_DIGEST]).digest() != bytes(data[-_DIGEST:]):
        if n < expected:
            raise ArtifactError(f"{source} is truncated: {n} bytes of {expected}")
        raise ArtifactError(f"{source} is corrupt: sha256 checksum mismatch (a byte changed)")
    if n != expected:
        raise ArtifactError(f"{source} is corrupt: {n} bytes but its header says {expected}")
    start = _PREFIX.size
    try:
        header = json.loads(bytes(data[start:start + hlen]).decode("utf-8"))
        codec = header["codec"]
        model, plugins, extra = header.get("model", {}), header.get("plugins", []), header.get("extra", {})
        if not (isinstance(codec, str) and isinstance(model, dict) and isinstance(plugins, list)
                and isinstance(extra, dict)):
            raise TypeError("header fields have the wrong types")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{source} has an invalid header: {e}") from None
    payload = bytes(data[start + hlen:start + hlen + plen])
    return Artifact(codec=codec, payload=payload, model=model, plugins=plugins, extra=extra, version=version)


def write_artifact(path: Union[str, Path], art: Artifact) -> int:
    """Write ``art`` to ``path``; returns the file size in bytes (the model bytes counted)."""
    data = pack_artifact(art)
    Path(path).write_bytes(data)
    return len(data)


def read_artifact(path: Union[str, Path]) -> Artifact:
    """Read and verify ``artifact.bin``; ``ArtifactError`` naming the file on any problem."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_ARTIFACT_BYTES:
            raise ArtifactError(f"{p} is {size} bytes; golf reads artifacts of at most {MAX_ARTIFACT_BYTES} bytes")
        data = p.read_bytes()
    except OSError as e:
        raise ArtifactError(f"cannot read artifact {p}: {e.strerror or e}") from None
    return unpack_artifact(data, source=str(p))


def build_artifact(
    qm: QuantizedModel,
    compressor: str = "zlib",
    byte_shuffle: bool = False,
    model: Optional[dict[str, Any]] = None,
    plugins: Iterable[dict[str, Any]] = (),
    extra: Optional[dict[str, Any]] = None,
) -> Artifact:
    """The core default path: serialize ``qm``, byte-shuffle (stride 2) if asked, compress."""
    codec, payload = compress_bytes(serialize_quantized(qm), compressor, 2 if byte_shuffle else 0)
    return Artifact(codec=codec, payload=payload, model=dict(model or {}), plugins=list(plugins),
                    extra=dict(extra or {}))


def decode_artifact(art: Artifact, max_bytes: Optional[int] = None) -> QuantizedModel:
    """The core default inverse: decompress with the header's codec (at most ``max_bytes``
    decompressed bytes when given) and deserialize."""
    return deserialize_quantized(decompress_bytes(art.codec, art.payload, max_bytes))
