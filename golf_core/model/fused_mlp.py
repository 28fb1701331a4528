"""The fused squared-(leaky-)ReLU MLP: its maths in plain PyTorch, and the op the training forward calls.

For ``x [M, d]``, ``w1 [h, d]`` (``mlp.fc``), ``w2 [d, h]`` (``mlp.proj``), slope ``s`` and
``f(p) = leaky_relu(p, s)**2`` (slope 0: the baseline's relu²; 0.5: golf-leaky-relu-sq, whose
fused form is openai/parameter-golf PR #1530/#1529's, training only)::

    pre  = x @ w1.T      post = f(pre)      out = post @ w2.T
    dpre = (g @ w2) * f'(pre),   f'(p) = 2p (p > 0) else 2 s**2 p
    dw2 = g.T @ post     dw1 = dpre.T @ x     dx = dpre @ w1

:func:`mlp_forward` / :func:`mlp_backward` are that maths (in the inputs' dtype, as the GPU
runs it: bf16 products accumulated in float32): the reference golf's Triton kernel
(``golf_core.model.triton_mlp``: the matmuls whose epilogue applies ``f`` or ``f'``) must
equal. The op ``golf::sq_relu_mlp`` runs the reference, and on CUDA the kernel once
:func:`enable_triton_mlp` has checked it; :class:`FusedSquaredReLUMLP` is what a plugin puts in
``block.mlp.fused`` (used by ``MLP.forward`` in training only).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from golf_core.model.fused import KernelCheck, fused_kernel_check

#: largest max|triton - reference| / max|reference| accepted on the probe: bf16 outputs differ by
#: a few roundings (2**-8 each) where float32 sums are ordered differently
TOLERANCE = 3e-2


def activation_grad(pre: Tensor, slope: float) -> Tensor:
    """``f'(pre)`` of ``f(p) = leaky_relu(p, slope)**2``: ``2p`` where ``p > 0``, else ``2 slope**2 p``."""
    return torch.where(pre > 0, 2.0 * pre, (2.0 * slope * slope) * pre)


def mlp_forward(x: Tensor, w1: Tensor, w2: Tensor, slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(out, pre, post)`` for 2-D ``x``; ``pre`` and ``post`` are what the backward needs."""
    pre = F.linear(x, w1)
    post = F.leaky_relu(pre, negative_slope=slope).square()
    return F.linear(post, w2), pre, post


def mlp_backward(g: Tensor, x: Tensor, w1: Tensor, w2: Tensor, pre: Tensor, post: Tensor,
                 slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(dx, dw1, dw2)`` given ``g = dL/dout``."""
    dpre = (g @ w2) * activation_grad(pre, slope)
    return dpre @ w1, dpre.t() @ x, g.t() @ post


# explicit schemas: the compact exported script drops annotations, which custom_op would infer from
@torch.library.custom_op("golf::sq_relu_mlp", mutates_args=(),
                         schema="(Tensor x, Tensor w1, Tensor w2, float slope) -> (Tensor, Tensor, Tensor)")
def mlp_op(x: Tensor, w1: Tensor, w2: Tensor, slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(out, pre, post)``; the reference here, the Triton kernel on CUDA when enabled."""
    out, pre, post = mlp_forward(x, w1, w2, slope)
    return out, pre, post


@mlp_op.register_fake
def _(x: Tensor, w1: Tensor, w2: Tensor, slope: float) -> tuple[Tensor, Tensor, Tensor]:
    m, h = x.shape[0], w1.shape[0]
    return x.new_empty((m, w2.shape[0])), x.new_empty((m, h)), x.new_empty((m, h))


@torch.library.custom_op("golf::sq_relu_mlp_backward", mutates_args=(),
                         schema="(Tensor g, Tensor x, Tensor w1, Tensor w2, Tensor pre, Tensor post, float slope)"
                                " -> (Tensor, Tensor, Tensor)")
def mlp_backward_op(g: Tensor, x: Tensor, w1: Tensor, w2: Tensor, pre: Tensor, post: Tensor,
                    slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(dx, dw1, dw2)``; the reference here, the Triton kernel on CUDA when enabled."""
    dx, dw1, dw2 = mlp_backward(g, x, w1, w2, pre, post, slope)
    return dx, dw1, dw2


@mlp_backward_op.register_fake
def _(g, x, w1, w2, pre, post, slope):
    return torch.empty_like(x), torch.empty_like(w1), torch.empty_like(w2)


def _setup_context(ctx, inputs, output) -> None:
    x, w1, w2, slope = inputs
    ctx.save_for_backward(x, w1, w2, output[1], output[2])
    ctx.slope = float(slope)


def _backward(ctx, g: Tensor, g_pre: Optional[Tensor], g_post: Optional[Tensor]):
    x, w1, w2, pre, post = ctx.saved_tensors
    dx, dw1, dw2 = mlp_backward_op(g.contiguous(), x, w1, w2, pre, post, ctx.slope)
    return dx, dw1, dw2, None


mlp_op.register_autograd(_backward, setup_context=_setup_context)


class FusedSquaredReLUMLP(nn.Module):
    """``block.mlp.fused``: ``forward(x [..., d], w1, w2) -> [..., d]`` through ``golf::sq_relu_mlp``."""

    def __init__(self, negative_slope: float = 0.0):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Tensor, w1: Tensor, w2: Tensor) -> Tensor:
        """The MLP ``proj(f(fc(x)))`` with the weights already in ``x``'s dtype."""
        out = mlp_op(x.reshape(-1, x.size(-1)), w1, w2, self.negative_slope)[0]
        return out.view(*x.shape[:-1], out.size(-1))

    def extra_repr(self) -> str:
        """Show the slope in ``print(model)``."""
        return f"negative_slope={self.negative_slope:g}"


def enable_triton_mlp(device, setting: str = "auto") -> KernelCheck:
    """Register the Triton kernel as the CUDA implementation of ``golf::sq_relu_mlp`` when it runs on
    ``device`` and equals the reference (``golf_core.model.fused``); return the decision."""

    def probe(dev) -> float:
        from golf_core.model import triton_mlp

        return triton_mlp.max_rel_diff_vs_reference(dev)

    check = fused_kernel_check("sq_relu_mlp", device, probe, TOLERANCE, setting)
    if check.used:
        from golf_core.model import triton_mlp

        triton_mlp.register_cuda_kernels()
    return check
