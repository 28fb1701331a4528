"""GPTQ for one weight matrix (research/pg_core.md §5.7, techniques.md §10), with SDClip scales.

For ``W [rows, cols]`` used as ``y = x @ W.T`` and ``H = sum x^T x`` over calibration inputs,
GPTQ quantizes the columns one at a time (in act-order: descending ``diag(H)``) and, after each
column, moves the remaining columns to compensate for its rounding error so that the
Hessian-weighted error ``tr((W - Ŵ) H (W - Ŵ)^T)`` stays small. Preparation of ``H``:

* dead inputs (``diag(H) == 0``): ``H[d, d] = 1`` and ``W[:, d] = 0``;
* damping: ``H += damp * mean(diag(H)) * I`` (1%);
* ``U = cholesky(H^-1)`` (upper), the factor the column updates use.

The per-row step is SDClip's ``k * std(row) / (2^(b-1) - 1)`` from the *original* weights,
rounded to fp16; codes are ``clamp(round(w / s), ±(2^(b-1)-1))``. Columns are processed in
blocks of 128 with the deferred ("lazy batch") update of the columns after each block.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from golf_core.api import clip_range, sdclip_scale

#: #1394's settings.
DAMP = 0.01
BLOCK_SIZE = 128


def _work_dtype(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


@dataclass
class PreparedHessian:
    """What GPTQ needs from a Hessian, independent of the weights' values and the clip:
    the act-order permutation, the dead-input mask and the upper Cholesky factor of ``H^-1``
    (permuted). Reuse it to quantize the same matrix at several clip multipliers."""

    dead: Tensor
    perm: Optional[Tensor]
    invperm: Optional[Tensor]
    hinv_upper: Tensor
    damp: float
    diag: Optional[Tensor] = None  # diag of the damped Hessian, original column order (Hessian-aware SDClip)


def prepare_hessian(H: Tensor, damp: float = DAMP, act_order: bool = True) -> PreparedHessian:
    """Dead inputs, damping, act-order and ``cholesky(H^-1, upper)``.

    If the damped matrix is still not positive definite (numerically), the damping is
    multiplied by 10 until it is (at most 6 times); ``PreparedHessian.damp`` records the value used.
    """
    dtype = _work_dtype(H)
    H = H.detach().to(dtype).clone()
    n = H.shape[0]
    if H.ndim != 2 or H.shape[1] != n:
        raise ValueError(f"Hessian must be square, got {tuple(H.shape)}")
    diag = torch.diagonal(H)
    dead = diag == 0
    H[dead, dead] = 1.0
    # the records' arithmetic (#1394 on): damp = 0.01 * mean(diag) as a tensor op in H's dtype, added
    # to the diagonal in place, and the act-order permutation taken from the DAMPED diagonal (adding
    # damp can round distinct small diagonal entries to ties, which argsort then orders its own way)
    mean_diag = H.diag().mean()  # a contiguous copy, as the records: the strided view sums in another order
    d = damp
    for _ in range(7):
        Hd = H.clone()
        Hd.diagonal().add_(d * mean_diag)
        perm = torch.argsort(torch.diagonal(Hd), descending=True) if act_order else None
        Hp = Hd[perm][:, perm] if perm is not None else Hd
        L, info = torch.linalg.cholesky_ex(Hp)
        if int(info) == 0:
            Hinv = torch.cholesky_inverse(L)
            U, info2 = torch.linalg.cholesky_ex(Hinv, upper=True)
            if int(info2) == 0:
                break
        d = d * 10 if d > 0 else 1e-6
    else:
        raise ValueError("Hessian is not positive definite even after damping")
    invperm = torch.argsort(perm) if perm is not None else None
    diag_damped = torch.diagonal(Hd).clone()  # original column order
    return PreparedHessian(dead=dead, perm=perm, invperm=invperm, hinv_upper=U, damp=d, diag=diag_damped)


def gptq_quantize_prepared(W: Tensor, prep: PreparedHessian, scale: Tensor, bits: int,
                           block_size: int = BLOCK_SIZE) -> Tensor:
    """GPTQ codes of ``W`` given a prepared Hessian and the per-row ``scale`` (used as
    ``scale.float()``): int8 ``[rows, cols]`` in ``±(2^(bits-1)-1)``, in the original column order."""
    cr = clip_range(bits)
    dtype = _work_dtype(W)
    U = prep.hinv_upper.to(dtype)
    W = W.detach().to(device=U.device, dtype=dtype).clone()
    rows, cols = W.shape
    if U.shape[0] != cols:
        raise ValueError(f"Hessian is {U.shape[0]}x{U.shape[0]} but the weight has {cols} columns")
    W[:, prep.dead.to(W.device)] = 0
    if prep.perm is not None:
        W = W[:, prep.perm.to(W.device)]
    s = scale.to(device=W.device).float().to(dtype)
    Q = torch.zeros_like(W)
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        E1 = torch.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        for j in range(i2 - i1):
            w = W1[:, j]
            q = torch.clamp(torch.round(w / s), -cr, cr)
            Q1[:, j] = q
            e = (w - q * s) / U1[j, j]
            W1[:, j:] -= e[:, None] * U1[j, j:][None, :]
            E1[:, j] = e
        Q[:, i1:i2] = Q1
        if i2 < cols:
            W[:, i2:] -= E1 @ U[i1:i2, i2:]
    if prep.invperm is not None:
        Q = Q[:, prep.invperm.to(Q.device)]
    return Q.to(torch.int8).contiguous()


def gptq_quantize_weight(W: Tensor, H: Tensor, bits: int = 6, clip_sigmas: float = 12.85,
                         block_size: int = BLOCK_SIZE, damp: float = DAMP, act_order: bool = True,
                         scale: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """GPTQ with SDClip for one matrix: ``(q int8 [rows, cols], scale fp16 [rows])``.

    ``scale`` overrides the SDClip step (fp16 per row). Computes in float64 when ``W`` is
    float64, else float32, on ``H``'s device.
    """
    if scale is None:
        scale = sdclip_scale(W, bits, clip_sigmas)
    prep = prepare_hessian(H, damp, act_order)
    return gptq_quantize_prepared(W, prep, scale, bits, block_size), scale.to(torch.float16).cpu()


def hessian_error(W: Tensor, W_hat: Tensor, H: Tensor) -> float:
    """``tr((W - Ŵ) H (W - Ŵ)^T)``, the quantity GPTQ minimizes (float64)."""
    E = (W.detach().double() - W_hat.detach().double()).to(H.device)
    return float(((E @ H.double()) * E).sum())
