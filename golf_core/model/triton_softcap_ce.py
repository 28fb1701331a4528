"""Triton kernels of the softcapped cross-entropy (maths and reference: ``golf_core.model.softcap_ce``).

Imported only when ``enable_triton_softcap_ce`` finds Triton on a CUDA device. One program per
row of raw logits ``x [N, V]`` (bf16/fp16/fp32), computing in float32 with ``c`` the softcap,
``z = 2c * sigmoid(2x / c)``:

* forward: pass 1 finds the row maximum of ``x`` (``z`` rises with ``x``, so it gives ``max z``),
  pass 2 sums ``exp(z - max z)``; ``lse = max z + log(sum)``, ``loss = lse - z[y]``;
* backward: ``dx = g * (exp(z - lse) - [col == y]) * 4 s (1 - s)`` with ``s = sigmoid(2x / c)``,
  recomputed from ``x`` (nothing but ``lse`` is stored between the passes).

With ``TRITON_INTERPRET=1`` the kernels also run on CPU tensors (Triton's interpreter), which is
how golf's tests check them on a machine without a GPU.
"""
from __future__ import annotations

import torch
from torch import Tensor

from golf_core.model.triton_compat import jit, tl, triton

from golf_core.model.softcap_ce import (softcap_ce_backward, softcap_ce_backward_op, softcap_ce_forward,
                                        softcap_ce_op)

BLOCK = 1024
NUM_WARPS = 4


@jit
def _softcap_ce_fwd_kernel(x_ptr, t_ptr, loss_ptr, lse_ptr, stride_row, n_cols, softcap,
                           BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_row
    scale = 2.0 / softcap
    amp = 2.0 * softcap
    xmax = tl.full([BLOCK], float("-inf"), tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        x = tl.load(x_row + cols, mask=cols < n_cols, other=float("-inf")).to(tl.float32)
        xmax = tl.maximum(xmax, x)
    zmax = amp * tl.sigmoid(tl.max(xmax, axis=0) * scale)
    total = tl.zeros([BLOCK], tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        mask = cols < n_cols
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        e = tl.exp(amp * tl.sigmoid(x * scale) - zmax)
        total += tl.where(mask, e, 0.0)
    lse = zmax + tl.log(tl.sum(total, axis=0))
    target = tl.load(t_ptr + row)
    z_target = amp * tl.sigmoid(tl.load(x_row + target).to(tl.float32) * scale)
    tl.store(lse_ptr + row, lse)
    tl.store(loss_ptr + row, lse - z_target)


@jit
def _softcap_ce_bwd_kernel(x_ptr, t_ptr, lse_ptr, g_ptr, dx_ptr, stride_row, stride_dx_row, n_cols, softcap,
                           BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_row
    dx_row = dx_ptr + row * stride_dx_row
    scale = 2.0 / softcap
    amp = 2.0 * softcap
    lse = tl.load(lse_ptr + row)
    g = tl.load(g_ptr + row).to(tl.float32)
    target = tl.load(t_ptr + row)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        mask = cols < n_cols
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        s = tl.sigmoid(x * scale)
        p = tl.exp(amp * s - lse) - tl.where(cols == target, 1.0, 0.0)
        dx = g * p * (4.0 * s * (1.0 - s))
        tl.store(dx_row + cols, dx.to(dx_ptr.dtype.element_ty), mask=mask)


def softcap_ce_fwd_triton(logits: Tensor, targets: Tensor, softcap: float) -> tuple[Tensor, Tensor]:
    """Per-row ``(losses, lse)`` (float32) of raw ``logits [N, V]`` by the Triton kernel."""
    logits = logits.contiguous()
    targets = targets.contiguous().long()
    n, v = logits.shape
    losses = torch.empty(n, device=logits.device, dtype=torch.float32)
    lse = torch.empty(n, device=logits.device, dtype=torch.float32)
    if n:
        _softcap_ce_fwd_kernel[(n,)](logits, targets, losses, lse, logits.stride(0), v, float(softcap),
                                     BLOCK=BLOCK, num_warps=NUM_WARPS)
    return losses, lse


def softcap_ce_bwd_triton(logits: Tensor, targets: Tensor, lse: Tensor, grad_losses: Tensor,
                          softcap: float) -> Tensor:
    """``dL/dlogits`` (``logits``' dtype) by the Triton kernel."""
    logits = logits.contiguous()
    targets = targets.contiguous().long()
    lse = lse.contiguous().float()
    grad_losses = grad_losses.contiguous().float()
    n, v = logits.shape
    dx = torch.empty_like(logits)
    if n:
        _softcap_ce_bwd_kernel[(n,)](logits, targets, lse, grad_losses, dx, logits.stride(0), dx.stride(0), v,
                                     float(softcap), BLOCK=BLOCK, num_warps=NUM_WARPS)
    return dx


_registered = False


def register_cuda_kernels() -> None:
    """Make the Triton kernels the CUDA implementation of ``golf::softcap_ce`` (once)."""
    global _registered
    if not _registered:
        softcap_ce_op.register_kernel("cuda")(softcap_ce_fwd_triton)
        softcap_ce_backward_op.register_kernel("cuda")(softcap_ce_bwd_triton)
        _registered = True


def compare_with_reference(device, rows: int = 64, vocab: int = 1000, softcap: float = 30.0,
                           dtype: torch.dtype = torch.bfloat16, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per output (loss, lse, grad) of the kernels against the plain-PyTorch maths on random
    logits (std 20, so the cap matters) of shape ``[rows, vocab]``: ``max_abs_diff``, the
    reference's ``max_abs`` and their ratio ``rel``."""
    g = torch.Generator().manual_seed(seed)
    x = (20.0 * torch.randn(rows, vocab, generator=g)).to(device=device, dtype=dtype)
    t = torch.randint(0, vocab, (rows,), generator=g).to(device)
    gl = torch.rand(rows, generator=g).to(device)
    loss, lse = softcap_ce_fwd_triton(x, t, softcap)
    ref_loss, ref_lse = softcap_ce_forward(x, t, softcap)
    dx = softcap_ce_bwd_triton(x, t, ref_lse, gl, softcap).float()
    ref_dx = softcap_ce_backward(x, t, ref_lse, gl, softcap).float()

    def diff(a, b):
        d, r = (a - b).abs().max().item(), b.abs().max().item()
        return {"max_abs_diff": d, "max_abs": r, "rel": d / max(r, 1e-30)}

    return {"loss": diff(loss, ref_loss), "lse": diff(lse, ref_lse), "grad": diff(dx, ref_dx)}


def max_rel_diff_vs_reference(device) -> float:
    """The probe of ``enable_triton_softcap_ce``: the largest ``rel`` of :func:`compare_with_reference`."""
    return max(v["rel"] for v in compare_with_reference(device).values())
