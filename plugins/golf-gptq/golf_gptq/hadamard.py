"""Randomized block Walsh-Hadamard rotation (MR-GPTQ, techniques.md §9), exact for every fan-in.

``R = D · blockdiag(H_b1/√b1, H_b2/√b2, ...)`` with ``D = diag(±1)`` (one sign per input column,
drawn from a seed and the tensor's name) and Sylvester Hadamard blocks whose sizes are powers
of two summing to the fan-in. ``R`` is orthogonal, so ``W' = W R`` and ``H' = Rᵀ H R`` give the
same layer outputs and the same Hessian-weighted error; GPTQ runs on ``(W', H')`` and the decoder
applies ``Ŵ = Ŵ' Rᵀ``: a fast transform per block, then the signs.

Block plan: the largest power of two dividing the fan-in, capped at ``max_block``, repeated
(512 → [512], 2048 → [2048], 1536 → [512, 512, 512]); when that power is below ``min_block``
(odd or nearly odd fan-ins) the fan-in is split greedily into powers of two instead
(1000 → [512, 256, 128, 64, 32, 8]). The plan is stored in the artifact, the signs are not
(they are regenerated from the seed at load: 0 bytes).
"""
from __future__ import annotations

import hashlib
import math
from typing import Any, Mapping, Optional, Sequence

import torch
from torch import Tensor

from golf_core.api import ArtifactError, decode_entry, dtype_from_name

#: Codec name of rotated per-row entries.
CODEC = "hadamard_per_row"
#: Version tag of the rotation scheme written into each entry.
SCHEME = "signs+block_wht/1"


def fwht(x: Tensor) -> Tensor:
    """Orthonormal fast Walsh-Hadamard transform over the last dim (a power of two):
    ``x @ H_n / sqrt(n)`` with Sylvester's ``H_2n = [[H_n, H_n], [H_n, -H_n]]``."""
    n = x.shape[-1]
    if n & (n - 1) or n == 0:
        raise ValueError(f"fwht needs a power-of-two length, got {n}")
    lead = x.shape[:-1]
    y = x.reshape(-1, n)
    h = 1
    while h < n:
        y = y.reshape(-1, n // (2 * h), 2, h)
        a, b = y[:, :, 0, :], y[:, :, 1, :]
        y = torch.stack((a + b, a - b), dim=2)
        h *= 2
    return (y.reshape(*lead, n) / math.sqrt(n)).to(x.dtype)


def block_plan(fan_in: int, max_block: Optional[int] = None, min_block: int = 16) -> list[int]:
    """Hadamard block sizes (powers of two) that sum to ``fan_in`` (module docstring)."""
    if fan_in < 1:
        raise ValueError(f"fan-in must be positive, got {fan_in}")
    p2 = fan_in & -fan_in  # largest power of two dividing fan_in
    if max_block is not None:
        if max_block < 1 or max_block & (max_block - 1):
            raise ValueError(f"max_block must be a power of two, got {max_block}")
        p2 = min(p2, max_block)
    if p2 >= min(min_block, fan_in):
        return [p2] * (fan_in // p2)
    blocks, rest = [], fan_in
    while rest:
        b = 1 << (rest.bit_length() - 1)
        if max_block is not None:
            b = min(b, max_block)
        blocks.append(b)
        rest -= b
    return blocks


def tensor_signs(seed: int, name: str, n: int) -> Tensor:
    """``n`` signs ±1 (float32) from ``seed`` and the tensor name; the same on every machine."""
    digest = hashlib.sha256(f"golf-mr-gptq/{seed}/{name}".encode()).digest()
    g = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))
    return torch.randint(0, 2, (n,), generator=g).float().mul_(2).sub_(1)


def _blocks_apply(x: Tensor, blocks: Sequence[int]) -> Tensor:
    if sum(blocks) != x.shape[-1]:
        raise ValueError(f"block plan {list(blocks)} does not sum to {x.shape[-1]}")
    parts, start = [], 0
    for b in blocks:
        parts.append(fwht(x[..., start:start + b]))
        start += b
    return torch.cat(parts, dim=-1)


def rotate(x: Tensor, signs: Tensor, blocks: Sequence[int]) -> Tensor:
    """``x @ R``: signs on the last dim, then the block transforms."""
    return _blocks_apply(x * signs.to(device=x.device, dtype=x.dtype), blocks)


def unrotate(x: Tensor, signs: Tensor, blocks: Sequence[int]) -> Tensor:
    """``x @ Rᵀ``: the block transforms (symmetric), then the signs."""
    return _blocks_apply(x, blocks) * signs.to(device=x.device, dtype=x.dtype)


def rotate_hessian(H: Tensor, signs: Tensor, blocks: Sequence[int]) -> Tensor:
    """``Rᵀ H R`` for a symmetric ``H``: rotate the columns, transpose, rotate again."""
    return rotate(rotate(H, signs, blocks).T.contiguous(), signs, blocks)


def rotation_matrix(signs: Tensor, blocks: Sequence[int], dtype: torch.dtype = torch.float64) -> Tensor:
    """The dense ``R`` (tests and inspection)."""
    return rotate(torch.eye(len(signs), dtype=dtype), signs, blocks)


class HadamardTransform:
    """The ``WeightTransform`` that golf-gptq's quantizer applies before GPTQ."""

    codec = CODEC

    def __init__(self, seed: int = 0, max_block: Optional[int] = None, min_block: int = 16,
                 rotate_embedding: bool = True, embed_pattern: str = "tok_emb"):
        self.seed = seed
        self.max_block = max_block
        self.min_block = min_block
        self.rotate_embedding = rotate_embedding
        self.embed_pattern = embed_pattern

    def forward(self, name: str, W: Tensor, H: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor], dict[str, Any]]:
        """``(W R, Rᵀ H R, entry metadata)``; the embedding is left alone unless ``rotate_embedding``."""
        if not self.rotate_embedding and self.embed_pattern and self.embed_pattern in name:
            return W, H, {"rotation": None}
        blocks = block_plan(W.shape[1], self.max_block, self.min_block)
        signs = tensor_signs(self.seed, name, W.shape[1])
        Hr = rotate_hessian(H, signs, blocks) if H is not None else None
        return rotate(W, signs, blocks), Hr, {"rotation": {"scheme": SCHEME, "seed": self.seed, "blocks": blocks}}


def decode_hadamard(name: str, entry: Mapping[str, Any], tensors: Mapping[str, Tensor]) -> Tensor:
    """Decoder for :data:`CODEC` entries: per-row dequantization, then ``Rᵀ`` (signs regenerated)."""
    base = decode_entry(name, {**entry, "codec": "per_row", "dtype": "float32"}, tensors)
    rot = entry.get("rotation")
    if rot is not None:
        if not isinstance(rot, dict) or rot.get("scheme") != SCHEME:
            raise ArtifactError(f"quantized tensor {name!r}: unknown rotation {rot!r}")
        try:
            seed, blocks = int(rot["seed"]), [int(b) for b in rot["blocks"]]
        except (KeyError, TypeError, ValueError):
            raise ArtifactError(f"quantized tensor {name!r}: rotation needs a seed and blocks") from None
        if sum(blocks) != base.shape[-1] or any(b < 1 or b & (b - 1) for b in blocks):
            raise ArtifactError(f"quantized tensor {name!r}: rotation blocks {blocks} do not fit {base.shape[-1]} columns")
        base = unrotate(base.double(), tensor_signs(seed, name, base.shape[-1]), blocks).float()
    return base.to(dtype_from_name(entry.get("dtype", "float32")))
