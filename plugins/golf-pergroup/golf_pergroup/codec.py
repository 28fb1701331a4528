"""The per-group container (#1855's ``COMPRESSOR=pergroup``, generalised to golf's QuantizedModel).

1. Every int8 tensor whose storage key, less a leading ``blocks.<i>.``, is one of ``groups``
   (``"_" + key`` for keys outside ``blocks``; default: #1855's ``_tok_emb.weight.q``,
   ``attn.c_k/c_q/c_v/proj.weight.q``, ``mlp.fc/proj.weight.q``) joins that group, in layer order.
2. Rows of the tensors in ``simsort`` groups are put in the greedy L1 order
   (:func:`golf_pergroup.simsort.similarity_order`); the uint16 permutations are kept.
3. Each 2-D tensor is written column-major (transposed) as raw int8; a group's bytes are
   concatenated and compressed by the backend (:mod:`golf_pergroup.backends`).
4. The rest (scales, LQER factors, gates, passthrough tensors, the meta and a manifest of the
   grouped tensors) is a golf-serialized QuantizedModel, brotli quality 11 window 24; the
   permutations are brotli quality 11.
5. Streams are packed as ``b"PGRP" + u32 count + u32 length each + streams``: the groups in
   order, then the rest, then the permutations.

:func:`unpack_pergroup` inverts it exactly: the serialized bytes it returns are those packed.
With ``max_bytes`` (an artifact is untrusted input) the brotli streams are decoded with that
ceiling, the manifest's sizes must fit under it before any group is decompressed, and every group
must decompress to exactly the size its manifest declares.
"""
from __future__ import annotations

import struct
from typing import Iterable, Optional, Sequence

import brotli
import numpy as np
import torch

from golf_core.api import ArtifactError, QuantizedModel, bounded_decompress, deserialize_quantized, serialize_quantized

from .backends import backend_compress, backend_decompress
from .simsort import similarity_order

MAGIC = b"PGRP"
#: #1855's groups, in its order, and the groups whose rows are similarity-sorted.
GROUP_ORDER = ("_tok_emb.weight.q", "attn.c_k.weight.q", "attn.c_q.weight.q", "attn.c_v.weight.q",
               "attn.proj.weight.q", "mlp.fc.weight.q", "mlp.proj.weight.q")
SIMSORT = ("_tok_emb.weight.q", "attn.c_q.weight.q", "mlp.fc.weight.q")


def group_of(key: str) -> tuple[str, int]:
    """``("attn.c_q.weight.q", 3)`` for ``blocks.3.attn.c_q.weight.q``; ``("_" + key, 0)`` outside blocks."""
    parts = key.split(".")
    if len(parts) > 2 and parts[0] == "blocks" and parts[1].isdigit():
        return ".".join(parts[2:]), int(parts[1])
    return "_" + key, 0


def pack_streams(streams: Sequence[bytes]) -> bytes:
    """``MAGIC + u32 count + u32 lengths + streams``."""
    return MAGIC + struct.pack(f"<I{len(streams)}I", len(streams), *map(len, streams)) + b"".join(streams)


def unpack_streams(blob: bytes) -> list[bytes]:
    """Invert :func:`pack_streams`; ``ArtifactError`` when the lengths do not add up."""
    if blob[:4] != MAGIC or len(blob) < 8:
        raise ArtifactError("pergroup payload does not start with PGRP")
    (n,) = struct.unpack_from("<I", blob, 4)
    off = 8 + 4 * n
    if len(blob) < off:
        raise ArtifactError(f"pergroup payload is truncated ({len(blob)} bytes, {n} streams)")
    lengths = struct.unpack_from(f"<{n}I", blob, 8)
    if off + sum(lengths) != len(blob):
        raise ArtifactError(f"pergroup payload is {len(blob)} bytes but its streams add up to {off + sum(lengths)}")
    out = []
    for n_bytes in lengths:
        out.append(blob[off:off + n_bytes])
        off += n_bytes
    return out


def pack_pergroup(data: bytes, backend: str = "zpaq", groups: Iterable[str] = GROUP_ORDER,
                  simsort: Iterable[str] = SIMSORT) -> bytes:
    """Serialized QuantizedModel bytes -> the per-group container (module docstring)."""
    qm = deserialize_quantized(data)
    groups, simsort = list(groups), set(simsort)
    members: dict[str, list[tuple[int, str]]] = {g: [] for g in groups}
    for key, t in qm.tensors.items():
        g, layer = group_of(key)
        if t.dtype == torch.int8 and g in members:
            members[g].append((layer, key))
    grouped = {k for m in members.values() for _, k in m}
    streams, perms, manifest = [], [], {}
    for g in groups:
        blob = []
        manifest[g] = []
        for _, key in sorted(members[g]):
            arr = qm.tensors[key].numpy()
            manifest[g].append([key, list(arr.shape)])
            if arr.ndim == 2:
                if g in simsort:
                    order = similarity_order(arr)
                    perms.append(order.tobytes())
                    arr = arr[order]
                arr = np.ascontiguousarray(arr.T)
            blob.append(arr.tobytes())
        streams.append(backend_compress(backend, b"".join(blob)))
    rest = QuantizedModel(tensors={k: t for k, t in qm.tensors.items() if k not in grouped},
                          meta={"format": qm.meta.get("format"), "entries": {},
                                "pergroup": {"meta": qm.meta, "groups": groups, "simsort": sorted(simsort),
                                             "manifest": manifest, "order": list(qm.tensors)}})
    streams.append(brotli.compress(serialize_quantized(rest), quality=11, lgwin=24))
    streams.append(brotli.compress(b"".join(perms), quality=11) if perms else b"")
    return pack_streams(streams)


def _brotli(data: bytes, max_bytes: Optional[int]) -> bytes:
    if not data:
        return b""
    if max_bytes is not None:
        return bounded_decompress(data, "brotli", max_bytes)
    try:
        return brotli.decompress(data)
    except brotli.error as e:
        raise ArtifactError(f"pergroup: a brotli stream does not decompress: {e}") from None


def unpack_pergroup(blob: bytes, backend: str = "zpaq", max_bytes: Optional[int] = None) -> bytes:
    """The per-group container -> the serialized QuantizedModel bytes it was made from
    (``max_bytes``: the decompression ceiling, module docstring)."""
    streams = unpack_streams(blob)
    if len(streams) < 2:
        raise ArtifactError(f"pergroup payload has {len(streams)} streams, fewer than the remainder and permutations")
    rest = deserialize_quantized(_brotli(streams[-2], max_bytes))
    perms = _brotli(streams[-1], max_bytes)
    try:
        info = rest.meta["pergroup"]
        groups, simsort, manifest = info["groups"], set(info["simsort"]), info["manifest"]
        sizes = {g: sum(int(np.prod(shape)) for _, shape in manifest[g]) for g in groups}
    except (KeyError, TypeError, ValueError) as e:
        raise ArtifactError(f"pergroup payload has no valid manifest: {e}") from None
    if len(streams) != len(groups) + 2:
        raise ArtifactError(f"pergroup payload has {len(streams)} streams for {len(groups)} groups")
    if max_bytes is not None and sum(sizes.values()) > max_bytes:
        raise ArtifactError(f"pergroup manifest declares {sum(sizes.values())} bytes of codes, over the "
                            f"{max_bytes}-byte ceiling of this recipe's model")
    tensors = dict(rest.tensors)
    p_off = 0
    for g, stream in zip(groups, streams):
        raw = np.frombuffer(backend_decompress(backend, stream), dtype=np.int8)
        if raw.size != sizes[g]:
            raise ArtifactError(f"pergroup group {g!r} decompresses to {raw.size} bytes, its manifest says {sizes[g]}")
        off = 0
        for key, shape in manifest[g]:
            n = int(np.prod(shape))
            if off + n > raw.size:
                raise ArtifactError(f"pergroup group {g!r} is shorter than its manifest")
            chunk = raw[off:off + n]
            off += n
            if len(shape) == 2:
                rows, cols = shape
                chunk = chunk.reshape(cols, rows).T
                if g in simsort:
                    perm = np.frombuffer(perms, dtype=np.uint16, count=rows, offset=p_off).astype(np.int64)
                    p_off += 2 * rows
                    inv = np.empty_like(perm)
                    inv[perm] = np.arange(rows)
                    chunk = chunk[inv]
            tensors[key] = torch.from_numpy(np.ascontiguousarray(chunk).reshape(shape))
    qm = QuantizedModel(tensors={k: tensors[k] for k in info["order"]}, meta=info["meta"])
    return serialize_quantized(qm)
