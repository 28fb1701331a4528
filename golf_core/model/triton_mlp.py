"""Triton kernel of the fused squared-(leaky-)ReLU MLP (maths and reference: ``golf_core.model.fused_mlp``).

Imported only when ``enable_triton_mlp`` finds Triton on a CUDA device. One tiled matmul
``c = a @ b.T`` (float32 accumulation, grouped tile order for L2 reuse) with an epilogue:

* forward (``a = x``, ``b = w1``): stores ``pre = c`` and ``post = f(pre)`` (``f`` on the rounded
  ``pre``, as the reference computes it);
* backward (``a = g``, ``b = w2.T``, read through strides): stores ``dpre = c * f'(pre)``.

The other products (``out = post @ w2.T``, ``dw1``, ``dw2``, ``dx``) are plain cuBLAS matmuls.
With ``TRITON_INTERPRET=1`` the kernel also runs on CPU tensors (Triton's interpreter); the
interpreter mis-computes ``tl.dot`` on bf16 tiles, so there the tiles are upcast to float32 first
(the same exact products, accumulated in float32 as on the GPU).
"""
from __future__ import annotations

import os

import torch
from torch import Tensor

from golf_core.model.triton_compat import jit, tl, triton
from golf_core.model.fused_mlp import mlp_backward, mlp_backward_op, mlp_forward, mlp_op

#: tile sizes for the H100 (bf16): 128 x 128 x 64, 8 warps, 3 stages
BLOCKS = (128, 128, 64)


@jit
def _matmul_act_kernel(a_ptr, b_ptr, c_ptr, aux_ptr, M, N, K, s_am, s_ak, s_bn, s_bk, s_cm, s_cn, slope,
                       FORWARD: tl.constexpr, IEEE: tl.constexpr, UPCAST: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                       BK: tl.constexpr, GROUP_M: tl.constexpr):
    pid = tl.program_id(0)
    tiles_m = tl.cdiv(M, BM)
    tiles_n = tl.cdiv(N, BN)
    per_group = GROUP_M * tiles_n
    first_m = (pid // per_group) * GROUP_M
    rows_in_group = tl.minimum(tiles_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % rows_in_group
    pid_n = (pid % per_group) // rows_in_group
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for k0 in range(0, K, BK):
        kk = k0 + rk
        a = tl.load(a_ptr + rm[:, None] * s_am + kk[None, :] * s_ak,
                    mask=(rm[:, None] < M) & (kk[None, :] < K), other=0.0)
        b = tl.load(b_ptr + kk[:, None] * s_bk + rn[None, :] * s_bn,
                    mask=(kk[:, None] < K) & (rn[None, :] < N), other=0.0)
        if UPCAST:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        if IEEE or UPCAST:
            acc = tl.dot(a, b, acc, input_precision="ieee")
        else:
            acc = tl.dot(a, b, acc)
    c = acc.to(c_ptr.dtype.element_ty)
    offs = rm[:, None] * s_cm + rn[None, :] * s_cn
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    if FORWARD:
        tl.store(c_ptr + offs, c, mask=mask)
        p = c.to(tl.float32)
        q = tl.where(p > 0, p, slope * p)
        tl.store(aux_ptr + offs, (q * q).to(aux_ptr.dtype.element_ty), mask=mask)
    else:
        p = tl.load(aux_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        d = c.to(tl.float32) * tl.where(p > 0, 2.0 * p, (2.0 * slope * slope) * p)
        tl.store(c_ptr + offs, d.to(c_ptr.dtype.element_ty), mask=mask)


def _launch(a: Tensor, b_nk: tuple[int, int], b: Tensor, c: Tensor, aux: Tensor, forward: bool, slope: float,
            blocks: tuple[int, int, int]) -> None:
    M, K = a.shape
    N = c.shape[1]
    BM, BN, BK = blocks
    grid = (triton.cdiv(M, BM) * triton.cdiv(N, BN),)
    _matmul_act_kernel[grid](a, b, c, aux, M, N, K, a.stride(0), a.stride(1), b_nk[0], b_nk[1],
                             c.stride(0), c.stride(1), float(slope), FORWARD=forward,
                             IEEE=a.dtype == torch.float32, UPCAST=os.environ.get("TRITON_INTERPRET") == "1", BM=BM, BN=BN, BK=BK, GROUP_M=8,
                             num_warps=8 if BM * BN >= 128 * 128 else 4, num_stages=3)


def pre_post_triton(x: Tensor, w1: Tensor, slope: float, blocks: tuple[int, int, int] = BLOCKS) -> tuple[Tensor, Tensor]:
    """``(pre, post)`` = ``(x @ w1.T, f(pre))`` by the kernel (x ``[M, d]``, w1 ``[h, d]``)."""
    pre = torch.empty((x.shape[0], w1.shape[0]), device=x.device, dtype=x.dtype)
    post = torch.empty_like(pre)
    _launch(x, (w1.stride(0), w1.stride(1)), w1, pre, post, True, slope, blocks)
    return pre, post


def dpre_triton(g: Tensor, w2: Tensor, pre: Tensor, slope: float, blocks: tuple[int, int, int] = BLOCKS) -> Tensor:
    """``dpre = (g @ w2) * f'(pre)`` by the kernel (g ``[M, d]``, w2 ``[d, h]``)."""
    dpre = torch.empty_like(pre)
    _launch(g, (w2.stride(1), w2.stride(0)), w2, dpre, pre.contiguous(), False, slope, blocks)
    return dpre


def mlp_fwd_triton(x: Tensor, w1: Tensor, w2: Tensor, slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(out, pre, post)`` with the kernel for ``pre``/``post``."""
    pre, post = pre_post_triton(x, w1, slope)
    return post @ w2.t(), pre, post


def mlp_bwd_triton(g: Tensor, x: Tensor, w1: Tensor, w2: Tensor, pre: Tensor, post: Tensor,
                   slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(dx, dw1, dw2)`` with the kernel for ``dpre``."""
    dpre = dpre_triton(g, w2, pre, slope)
    return dpre @ w1, dpre.t() @ x, g.t() @ post


_registered = False


def register_cuda_kernels() -> None:
    """Make the kernel the CUDA implementation of ``golf::sq_relu_mlp`` (once)."""
    global _registered
    if not _registered:
        mlp_op.register_kernel("cuda")(mlp_fwd_triton)
        mlp_backward_op.register_kernel("cuda")(mlp_bwd_triton)
        _registered = True


def compare_with_reference(device, m: int = 256, d: int = 128, h: int = 512, slope: float = 0.5,
                           dtype: torch.dtype = torch.bfloat16, blocks: tuple[int, int, int] = BLOCKS,
                           seed: int = 0) -> dict[str, dict[str, float]]:
    """Per output (pre, post, out, dpre, dx, dw1, dw2) of the kernel path against the plain-PyTorch
    maths on random inputs (sizes need not be multiples of the tiles): ``max_abs_diff``, the
    reference's ``max_abs`` and their ratio ``rel``."""
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=gen)).to(device=device, dtype=dtype)

    x, w1, w2, g = rnd(m, d), rnd(h, d, scale=d ** -0.5), rnd(d, h, scale=h ** -0.5), rnd(m, d)
    pre, post = pre_post_triton(x, w1, slope, blocks)
    ref_out, ref_pre, ref_post = mlp_forward(x, w1, w2, slope)
    dpre = dpre_triton(g, w2, ref_pre, slope, blocks)
    ref_dpre = (g @ w2) * (torch.where(ref_pre > 0, 2.0 * ref_pre, (2.0 * slope * slope) * ref_pre))
    out = post @ w2.t()
    dx, dw1, dw2 = dpre @ w1, dpre.t() @ x, g.t() @ post
    ref_dx, ref_dw1, ref_dw2 = mlp_backward(g, x, w1, w2, ref_pre, ref_post, slope)

    def diff(a, b):
        d, r = (a.float() - b.float()).abs().max().item(), b.float().abs().max().item()
        return {"max_abs_diff": d, "max_abs": r, "rel": d / max(r, 1e-30)}

    return {"pre": diff(pre, ref_pre), "post": diff(post, ref_post), "out": diff(out, ref_out),
            "dpre": diff(dpre, ref_dpre), "dx": diff(dx, ref_dx), "dw1": diff(dw1, ref_dw1), "dw2": diff(dw2, ref_dw2)}


def max_rel_diff_vs_reference(device) -> float:
    """The probe of ``enable_triton_mlp``: the largest ``rel`` of :func:`compare_with_reference`."""
    return max(v["rel"] for v in compare_with_reference(device).values())
