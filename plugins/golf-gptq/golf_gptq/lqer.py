"""LQER: a low-rank correction of the quantization error on the worst tensors (PR #1797; #1851, #1855).

After GPTQ, for every quantized tensor ``E = W - q*s`` (the original weights minus the decoded
ones). The ``top_k`` tensors with the largest ``||E||_F`` get ``E ~ A B`` from the truncated SVD
``E = U S V^T``: ``A = U_r S_r`` (rows x r), ``B = V_r^T`` (r x cols), ``r = rank``. The factors are
stored quantized:

* asymmetric (``asym``, used when ``B.numel() % group == 0``): ``A`` in int2 with one fp16 scale
  for the tensor, ``s_A = max|A|/1.5``, ``q_A = clamp(round(A/s_A), -2, 1)``; ``B`` in int4 over
  groups of ``group`` consecutive elements of the flattened ``B``, ``s_B = max|group|/7.5`` (fp16),
  ``q_B = clamp(round(B/s_B), -8, 7)``;
* symmetric fallback: ``A`` and ``B`` in ``factor_bits`` with one fp16 scale per row
  (``max|row|/(2^(b-1)-1)``).

Decoding: ``W = q*s + (q_A s_A)(q_B s_B)`` (codec ``per_row_lqer``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor

from golf_core.api import ArtifactError, QuantizedModel, clip_range, dtype_from_name

#: Codec name of an entry with a correction.
LQER_CODEC = "per_row_lqer"


@dataclass
class LQERConfig:
    """``top_k`` tensors (0: off), SVD ``rank``, asymmetric packing with ``group``, symmetric ``factor_bits``."""

    top_k: int = 0
    rank: int = 4
    asym: bool = True
    group: int = 64
    factor_bits: int = 4


@dataclass
class Correction:
    """The quantized factors of one tensor: ``kind`` ``"asym"`` or ``"sym"``."""

    kind: str
    qA: Tensor
    sA: Tensor
    qB: Tensor
    sB: Tensor


def pack_asym(A: Tensor, B: Tensor, group: int = 64) -> Correction:
    """int2 ``A`` with one scale, int4 ``B`` in groups of ``group`` (module docstring)."""
    sA = (A.abs().amax().clamp_min(1e-10) / 1.5).to(torch.float16)
    qA = torch.clamp(torch.round(A / sA.float()), -2, 1).to(torch.int8)
    Bf = B.reshape(-1, group)
    sB = (Bf.abs().amax(dim=-1, keepdim=True).clamp_min(1e-10) / 7.5).to(torch.float16).reshape(-1)
    qB = torch.clamp(torch.round(Bf / sB.float().reshape(-1, 1)), -8, 7).to(torch.int8).reshape(B.shape)
    return Correction("asym", qA.contiguous(), sA, qB.contiguous(), sB)


def pack_sym(A: Tensor, B: Tensor, bits: int = 4) -> Correction:
    """``A`` and ``B`` in ``bits`` with one fp16 scale per row."""
    cr = clip_range(bits)
    sA = (A.abs().amax(dim=1).clamp_min(1e-10) / cr).to(torch.float16)
    sB = (B.abs().amax(dim=1).clamp_min(1e-10) / cr).to(torch.float16)
    qA = torch.clamp(torch.round(A / sA.float().view(-1, 1)), -cr, cr).to(torch.int8)
    qB = torch.clamp(torch.round(B / sB.float().view(-1, 1)), -cr, cr).to(torch.int8)
    return Correction("sym", qA.contiguous(), sA, qB.contiguous(), sB)


def low_rank(E: Tensor, rank: int) -> tuple[Tensor, Tensor]:
    """``(A, B)`` of the rank-``rank`` truncated SVD of ``E``: ``A = U_r S_r``, ``B = V_r^T``."""
    U, S, Vh = torch.linalg.svd(E, full_matrices=False)
    r = min(rank, S.numel())
    return (U[:, :r] * S[:r]).contiguous(), Vh[:r, :].contiguous()


def select_top_k(errors: Mapping[str, float], k: int) -> list[str]:
    """The ``k`` names with the largest error (ties keep the mapping's order)."""
    return [n for n, _ in sorted(errors.items(), key=lambda kv: -kv[1])[:k]]


def lqer_factors(weights: Mapping[str, Tensor], coded: Mapping[str, tuple[Tensor, Tensor]],
                 config: LQERConfig) -> dict[str, Correction]:
    """The corrections of the ``config.top_k`` tensors with the largest ``||W - q*s||_F``.

    :param weights: original weights by name; :param coded: ``(q, per-row scale)`` by name.
    """
    if config.top_k <= 0 or not coded:
        return {}
    errs: dict[str, Tensor] = {}
    norms: dict[str, float] = {}
    for name, (q, s) in coded.items():
        E = weights[name].detach().to("cpu").float() - q.float() * s.float().view(-1, 1)
        errs[name], norms[name] = E, float(E.norm())
    out = {}
    for name in select_top_k(norms, config.top_k):
        A, B = low_rank(errs[name], config.rank)
        out[name] = (pack_asym(A, B, config.group) if config.asym and B.numel() % config.group == 0
                     else pack_sym(A, B, config.factor_bits))
    return out


def add_lqer_entry(qm: QuantizedModel, name: str, entry: dict[str, Any], q: Tensor, s: Tensor, c: Correction) -> None:
    """Store a corrected tensor: codes, scales and the four factor tensors."""
    qm.add(name, {**entry, "lqer": c.kind, "lqer_rank": int(c.qA.shape[1])}, q=q, scale=s,
           lqA=c.qA, lqAs=c.sA, lqB=c.qB, lqBs=c.sB)


def correction_matrix(kind: str, qA: Tensor, sA: Tensor, qB: Tensor, sB: Tensor) -> Tensor:
    """``(q_A s_A)(q_B s_B)`` in float32."""
    if kind == "asym":
        A = qA.float() * float(sA.float())
        g = qB.numel() // sB.numel()
        B = (qB.reshape(-1, g).float() * sB.float().view(-1, 1)).reshape(qB.shape)
    elif kind == "sym":
        A = qA.float() * sA.float().view(-1, 1)
        B = qB.float() * sB.float().view(-1, 1)
    else:
        raise ArtifactError(f"unknown LQER kind {kind!r}")
    return A @ B


def decode_lqer(name: str, entry: Mapping[str, Any], tensors: Mapping[str, Tensor]) -> Tensor:
    """Decoder of codec ``per_row_lqer``: ``q*s + (q_A s_A)(q_B s_B)``, cast to the entry's dtype."""
    try:
        q, s = tensors[entry["q"]], tensors[entry["scale"]]
        parts = [tensors[entry[k]] for k in ("lqA", "lqAs", "lqB", "lqBs")]
    except KeyError as e:
        raise ArtifactError(f"quantized tensor {name!r}: LQER entry is missing {e}") from None
    W = q.float() * s.float().view(q.shape[0], 1)
    return (W + correction_matrix(entry.get("lqer", ""), *parts)).to(dtype_from_name(entry.get("dtype", "float32")))
