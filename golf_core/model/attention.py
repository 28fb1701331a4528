"""Causal attention kernels: FlashAttention 3, FlashAttention 2, torch SDPA (issue 11).

Every backend takes ``q [B, T, H, D]``, ``k, v [B, T, Hkv, D]`` (``H % Hkv == 0``, query head
``h`` reads KV head ``h // (H // Hkv)``), applies causal softmax attention with scale
``1/sqrt(D)`` and returns ``[B, T, H, D]``.

``[model] attention_backend``:

* ``"auto"``: FA3 (``flash_attn_interface``), then FA2 (``flash_attn``), when the device is CUDA,
  the compute dtype is bf16/fp16 and the package imports; otherwise ``"sdpa"``.
* ``"flash3"`` / ``"flash2"`` / ``"sdpa"``: forced; an unusable forced backend raises
  ``RecipeError`` in one line.

``resolve_backend`` returns the chosen name; ``prepare_for_device`` records it on the model
(``model.attention_backend``) so the manifest can store it.

``document_attention`` is the same attention restricted to segments (documents, PR #1530):
position ``i`` attends to ``j`` only when ``j <= i`` and both lie in the same segment of
``cu_seqlens`` (``golf_core.model.documents``). FA3 (and FA2) run ``flash_attn_varlen_func`` on the
flattened ``[B*T, H, D]`` tokens; the other backends run SDPA with the equivalent dense mask
``[B, 1, T, T]`` (exact, but quadratic in ``T``: meant for CPU and for rows of a few thousand
tokens).
"""
from __future__ import annotations

import importlib
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from golf_core.model.documents import segment_ids  # the exported script ships it in every run
from golf_core.errors import RecipeError

BACKENDS = ("flash3", "flash2", "sdpa")
_MODULES = {"flash3": "flash_attn_interface", "flash2": "flash_attn"}
_SDPA_HAS_GQA = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 5)

_flash_funcs: dict[str, Callable] = {}


def _import_flash(name: str, func: str = "flash_attn_func") -> Callable:
    """Import and cache ``func`` of backend ``name``'s package; raises ImportError if absent."""
    key = name if func == "flash_attn_func" else f"{name}.{func}"
    fn = _flash_funcs.get(key)
    if fn is None:
        fn = getattr(importlib.import_module(_MODULES[name]), func)
        _flash_funcs[key] = fn
    return fn


def backend_available(name: str) -> Optional[str]:
    """``None`` if backend ``name``'s package imports, else the reason it does not."""
    if name == "sdpa":
        return None
    try:
        _import_flash(name)
    except Exception as e:  # ImportError, or a broken build raising at import time
        return f"{_MODULES[name]} cannot be imported ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return None


def resolve_backend(requested: str, device: torch.device, dtype: torch.dtype) -> str:
    """Pick the attention backend for ``requested`` on ``device`` with compute ``dtype``.

    :param requested: ``"auto"``, ``"flash3"``, ``"flash2"`` or ``"sdpa"``.
    :return: the backend name that will run.
    :raises RecipeError: a forced FlashAttention backend that cannot run here.
    """
    device = torch.device(device)
    if requested == "sdpa":
        return "sdpa"
    half = dtype in (torch.bfloat16, torch.float16)
    if requested == "auto":
        if device.type == "cuda" and half:
            for name in ("flash3", "flash2"):
                if backend_available(name) is None:
                    return name
        return "sdpa"
    if requested not in BACKENDS:
        raise RecipeError(f"[model] attention_backend = {requested!r}: expected one of auto, {', '.join(BACKENDS)}")
    if device.type != "cuda":
        raise RecipeError(f"[model] attention_backend = {requested!r} needs a CUDA device, this run uses {device.type}")
    if not half:
        raise RecipeError(f"[model] attention_backend = {requested!r} needs bf16/fp16 compute, [model] dtype resolves to {dtype}")
    reason = backend_available(requested)
    if reason is not None:
        raise RecipeError(f"[model] attention_backend = {requested!r}: {reason}")
    return requested


def _flash3(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    out = _flash_funcs["flash3"](q, k, v, causal=True)  # imported by resolve_backend
    # some FA3 interface builds return (out, softmax_lse)
    return out[0] if isinstance(out, (tuple, list)) else out


def _flash2(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    out = _flash_funcs["flash2"](q, k, v, causal=True)
    return out[0] if isinstance(out, (tuple, list)) else out


def _sdpa(q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """SDPA on ``[B,T,H,D]`` tensors: causal, or under the boolean ``mask`` when one is given."""
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    kw = {"is_causal": True} if mask is None else {"attn_mask": mask}
    groups = q.size(2) // k.size(2)
    if groups == 1:
        y = F.scaled_dot_product_attention(qh, kh, vh, **kw)
    elif _SDPA_HAS_GQA:
        y = F.scaled_dot_product_attention(qh, kh, vh, enable_gqa=True, **kw)
    else:
        y = F.scaled_dot_product_attention(
            qh, kh.repeat_interleave(groups, dim=1), vh.repeat_interleave(groups, dim=1), **kw)
    return y.transpose(1, 2)


_KERNELS: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {
    "flash3": _flash3, "flash2": _flash2, "sdpa": _sdpa,
}


def causal_attention(q: Tensor, k: Tensor, v: Tensor, backend: str = "sdpa") -> Tensor:
    """Causal GQA attention ``[B,T,H,D], [B,T,Hkv,D], [B,T,Hkv,D] -> [B,T,H,D]`` with ``backend``."""
    return _KERNELS[backend](q, k, v)


def document_mask(cu_seqlens: Tensor, batch: int, seq_len: int) -> Tensor:
    """The boolean mask ``[batch, 1, seq_len, seq_len]``: True where query ``i`` may read key
    ``j`` (``j <= i`` in the same segment of ``cu_seqlens``)."""
    seg = segment_ids(cu_seqlens, batch, seq_len)
    pos = torch.arange(seq_len, device=cu_seqlens.device)
    causal = pos[None, :] <= pos[:, None]
    return ((seg[:, :, None] == seg[:, None, :]) & causal[None])[:, None]


def document_attention(q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, max_seqlen: int,
                       backend: str = "sdpa") -> Tensor:
    """Causal GQA attention within the segments of ``cu_seqlens`` (over the flattened ``B*T``
    positions; see the module docstring); shapes as ``causal_attention``.

    :param max_seqlen: an upper bound on a segment's length (FlashAttention's ``max_seqlen``).
    """
    B, T, H, D = q.shape
    if backend in ("flash3", "flash2"):
        fn = _import_flash(backend, "flash_attn_varlen_func")
        out = fn(q.reshape(B * T, H, D), k.reshape(B * T, k.size(2), D), v.reshape(B * T, v.size(2), D),
                 cu_seqlens_q=cu_seqlens, cu_seqlens_k=cu_seqlens, max_seqlen_q=max_seqlen,
                 max_seqlen_k=max_seqlen, causal=True)
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out.view(B, T, H, D)
    return _sdpa(q, k, v, document_mask(cu_seqlens, B, T))


def use_baseline_sdpa_kernels() -> None:
    """Enable only the flash SDPA kernel (cudnn, mem-efficient and math off), as the baseline's
    ``main`` does on the GPU. Process-global; call it once on CUDA runs that use ``"sdpa"``."""
    from torch.backends.cuda import enable_cudnn_sdp, enable_flash_sdp, enable_math_sdp, enable_mem_efficient_sdp

    enable_cudnn_sdp(False)
    enable_flash_sdp(True)
    enable_mem_efficient_sdp(False)
    enable_math_sdp(False)
