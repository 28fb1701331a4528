"""The training loss: cross-entropy of soft-capped logits, and the maths of its fused kernel.

GPT's loss on raw logits ``x`` (``hidden @ tok_emb.weight.T``) with softcap ``c`` (30) is
``cross_entropy(c * tanh(x / c), y)`` (pg_core §4.2). The fused form (openai/parameter-golf
PR #1787, training only) works per row from ``x`` without materializing the capped logits, with
``z = 2c * sigmoid(2x / c) = c * tanh(x / c) + c`` (a constant shift per row, so the same CE)::

    lse  = logsumexp(z)            loss = lse - z[y]
    dL/dx = g * (softmax(z) - onehot(y)) * 4 s (1 - s),   s = sigmoid(2x / c)

:func:`softcap_ce_forward` and :func:`softcap_ce_backward` are that maths in plain PyTorch
(float32): the reference that golf's Triton kernels (``golf_core.model.triton_softcap_ce``)
must equal. The op ``golf::softcap_ce`` (``torch.library.custom_op`` with its backward
registered) runs the reference everywhere, and the Triton kernel on CUDA once
``enable_triton_softcap_ce`` has checked it; ``torch.compile(fullgraph=True)`` sees it as one op.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from golf_core.model.fused import KernelCheck, fused_kernel_check

#: largest max|triton - reference| / max|reference| accepted on the probe (float32 losses; bf16
#: gradients, where one rounding step is 2**-8 of the value)
TOLERANCE = 1e-2


def softcap_ce_forward(logits: Tensor, targets: Tensor, softcap: float) -> tuple[Tensor, Tensor]:
    """Per-row ``(losses, lse)`` in float32 for raw ``logits [N, V]`` and ``targets [N]``."""
    x = logits.float()
    z = (2.0 * softcap) * torch.sigmoid(x * (2.0 / softcap))
    lse = torch.logsumexp(z, dim=-1)
    losses = lse - z.gather(1, targets.long()[:, None]).squeeze(1)
    return losses, lse


def softcap_ce_backward(logits: Tensor, targets: Tensor, lse: Tensor, grad_losses: Tensor,
                        softcap: float) -> Tensor:
    """``dL/dlogits [N, V]`` (in ``logits``' dtype) given the forward's ``lse`` and ``dL/dlosses [N]``."""
    x = logits.float()
    s = torch.sigmoid(x * (2.0 / softcap))
    probs = torch.exp((2.0 * softcap) * s - lse[:, None])
    probs = probs.scatter_add(1, targets.long()[:, None], torch.full_like(probs[:, :1], -1.0))
    grad = grad_losses.float()[:, None] * probs * (4.0 * s * (1.0 - s))
    return grad.to(logits.dtype)


# explicit schemas: the compact exported script drops annotations, which custom_op would infer from
@torch.library.custom_op("golf::softcap_ce", mutates_args=(),
                         schema="(Tensor logits, Tensor targets, float softcap) -> (Tensor, Tensor)")
def softcap_ce_op(logits: Tensor, targets: Tensor, softcap: float) -> tuple[Tensor, Tensor]:
    """Per-row ``(losses, lse)``; the reference here, the Triton kernel on CUDA when enabled."""
    return softcap_ce_forward(logits, targets, softcap)


@softcap_ce_op.register_fake
def _(logits: Tensor, targets: Tensor, softcap: float) -> tuple[Tensor, Tensor]:
    n = logits.shape[0]
    return logits.new_empty((n,), dtype=torch.float32), logits.new_empty((n,), dtype=torch.float32)


@torch.library.custom_op("golf::softcap_ce_backward", mutates_args=(),
                         schema="(Tensor logits, Tensor targets, Tensor lse, Tensor grad_losses, float softcap) -> Tensor")
def softcap_ce_backward_op(logits: Tensor, targets: Tensor, lse: Tensor, grad_losses: Tensor,
                           softcap: float) -> Tensor:
    """``dL/dlogits``; the reference here, the Triton kernel on CUDA when enabled."""
    return softcap_ce_backward(logits, targets, lse, grad_losses, softcap)


@softcap_ce_backward_op.register_fake
def _(logits: Tensor, targets: Tensor, lse: Tensor, grad_losses: Tensor, softcap: float) -> Tensor:
    return torch.empty_like(logits)


def _setup_context(ctx, inputs, output) -> None:
    logits, targets, softcap = inputs
    ctx.save_for_backward(logits, targets, output[1])
    ctx.softcap = float(softcap)


def _backward(ctx, grad_losses: Tensor, grad_lse: Optional[Tensor]):
    logits, targets, lse = ctx.saved_tensors
    return softcap_ce_backward_op(logits, targets, lse, grad_losses, ctx.softcap), None, None


softcap_ce_op.register_autograd(_backward, setup_context=_setup_context)


def softcapped_cross_entropy(logits: Tensor, targets: Tensor, softcap: float, fused: bool = False) -> Tensor:
    """Mean CE of ``targets [N]`` under ``softcap * tanh(logits / softcap)`` for raw ``logits [N, V]``.

    ``fused=False``: the baseline's ``F.cross_entropy`` on the capped logits cast to float32;
    ``fused=True``: the ``golf::softcap_ce`` op (same value up to float32 rounding).
    """
    if fused:
        return softcap_ce_op(logits, targets, float(softcap))[0].mean()
    capped = softcap * torch.tanh(logits / softcap)
    return F.cross_entropy(capped.float(), targets, reduction="mean")


def enable_triton_softcap_ce(device: Union[str, torch.device], setting: str = "auto") -> KernelCheck:
    """Register the Triton kernels as the CUDA implementation of ``golf::softcap_ce`` when they can
    run on ``device`` and equal the reference (see ``golf_core.model.fused``); return the decision."""

    def probe(dev: torch.device) -> float:
        from golf_core.model import triton_softcap_ce

        return triton_softcap_ce.max_rel_diff_vs_reference(dev)

    check = fused_kernel_check("softcap_ce", device, probe, TOLERANCE, setting)
    if check.used:
        from golf_core.model import triton_softcap_ce

        triton_softcap_ce.register_cuda_kernels()
    return check
