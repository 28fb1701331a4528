"""QuantizedModel <-> bytes, without pickle: a JSON header, then raw little-endian tensor bytes.

Layout (deterministic for a given QuantizedModel)::

    b"GOLFQM" + version (u16 LE, 1)
    header length (u64 LE)
    header: UTF-8 JSON {"meta": <meta>, "tensors": [[key, dtype, shape, nbytes], ...]}
    tensor bytes, in the header's order, each C-contiguous, little-endian

Decoding only parses JSON and copies bytes into tensors of whitelisted dtypes: nothing in the
bytes can make Python run code.
"""
from __future__ import annotations

import json
import struct
import sys

import torch

from ..errors import ArtifactError
from .quantized import QuantizedModel, dtype_from_name, dtype_name

#: Leading bytes of a serialized QuantizedModel.
SERIAL_MAGIC = b"GOLFQM"
#: Current serialization version.
SERIAL_VERSION = 1
_PREFIX = struct.Struct("<6sHQ")


def _check_little_endian() -> None:
    if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
        raise ArtifactError("golf serialization needs a little-endian host")


def tensor_bytes(t: torch.Tensor) -> bytes:
    """The raw little-endian bytes of a tensor (C order)."""
    t = t.detach().to("cpu").contiguous()
    if t.numel() == 0:
        return b""
    return t.reshape(-1).view(torch.uint8).numpy().tobytes()


def serialize_quantized(qm: QuantizedModel) -> bytes:
    """Encode ``qm`` as bytes (module docstring). Same input, same bytes."""
    _check_little_endian()
    try:
        qm.check()
    except (ValueError, TypeError) as e:
        raise ArtifactError(f"quantized model cannot be serialized: {e}") from None
    index = []
    blobs = []
    for key, t in qm.tensors.items():
        b = tensor_bytes(t)
        index.append([key, dtype_name(t.dtype), list(t.shape), len(b)])
        blobs.append(b)
    header = json.dumps({"meta": qm.meta, "tensors": index}, separators=(",", ":"),
                        ensure_ascii=True, allow_nan=False).encode("utf-8")
    return _PREFIX.pack(SERIAL_MAGIC, SERIAL_VERSION, len(header)) + header + b"".join(blobs)


def deserialize_quantized(data: bytes) -> QuantizedModel:
    """Decode bytes written by :func:`serialize_quantized`; ``ArtifactError`` for anything else."""
    _check_little_endian()
    if len(data) < _PREFIX.size:
        raise ArtifactError(f"serialized model is truncated ({len(data)} bytes)")
    magic, version, hlen = _PREFIX.unpack_from(data)
    if magic != SERIAL_MAGIC:
        raise ArtifactError(f"payload is not a golf quantized model (magic {magic!r})")
    if version != SERIAL_VERSION:
        raise ArtifactError(f"serialized model version {version} is unknown (this golf reads {SERIAL_VERSION})")
    start = _PREFIX.size
    if start + hlen > len(data):
        raise ArtifactError("serialized model is truncated inside its header")
    try:
        header = json.loads(data[start:start + hlen].decode("utf-8"))
        meta, index = header["meta"], header["tensors"]
        if not isinstance(meta, dict) or not isinstance(index, list):
            raise TypeError("bad header types")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"serialized model header is not valid: {e}") from None
    pos = start + hlen
    tensors: dict[str, torch.Tensor] = {}
    for item in index:
        try:
            key, dname, shape, nbytes = item
            dtype = dtype_from_name(dname)
            shape = [int(s) for s in shape]
            nbytes = int(nbytes)
        except (ValueError, TypeError) as e:
            raise ArtifactError(f"serialized model tensor entry {item!r} is not valid: {e}") from None
        numel = 1
        for s in shape:
            if s < 0:
                raise ArtifactError(f"serialized tensor {key!r} has a negative dimension")
            numel *= s
        itemsize = torch.empty((), dtype=dtype).element_size()
        if numel * itemsize != nbytes or pos + nbytes > len(data):
            raise ArtifactError(f"serialized tensor {key!r}: {nbytes} bytes do not fit shape {shape} or the payload")
        buf = bytearray(data[pos:pos + nbytes])
        flat = torch.frombuffer(buf, dtype=torch.uint8) if nbytes else torch.empty(0, dtype=torch.uint8)
        tensors[key] = flat.view(dtype).reshape(shape)
        pos += nbytes
    if pos != len(data):
        raise ArtifactError(f"serialized model has {len(data) - pos} unexpected trailing bytes")
    return QuantizedModel(tensors=tensors, meta=meta)
