"""Device placement and the baseline's dtype layout (pg_core §4.2 "Dtypes", §9.8).

bf16 layout (``[model] dtype`` "bf16", or "auto" on CUDA), exactly as the records build it:
``model.to(device).bfloat16()`` (every float parameter *and buffer*, so the RoPE ``inv_freq``
and its angle tables become bf16), then every ``CastedLinear`` back to float32 (its initial
values therefore rounded through bf16 once), then every parameter with ``ndim < 2`` or a
control-pattern name back to float32. ``tok_emb.weight`` stays bf16.
fp32 layout ("fp32", or "auto" off CUDA): everything float32.
It also decides the fused softcapped CE (``model.fused_ce``, see ``golf_core.model.fused``).
"""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from golf_core.errors import RecipeError
from golf_core.model.attention import resolve_backend
from golf_core.model.layers import CastedLinear
from golf_core.model.params import MODEL_PATTERNS_ATTR, is_scalar_param


def resolve_dtype(setting: str, device: Union[str, torch.device]) -> torch.dtype:
    """Compute dtype for ``[model] dtype`` ``setting`` on ``device``: auto -> bf16 on CUDA, else fp32."""
    device = torch.device(device)
    if setting == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if setting == "bf16":
        return torch.bfloat16
    if setting == "fp32":
        return torch.float32
    raise RecipeError(f"[model] dtype = {setting!r}: expected auto, bf16 or fp32")


def restore_fp32_params(model: nn.Module) -> None:
    """``CastedLinear`` modules and scalar/control parameters back to float32 (in place).

    Control patterns are ``CONTROL_TENSOR_PATTERNS`` plus any a plugin listed in
    ``model.golf_control_patterns``.
    """
    extra = tuple(getattr(model, MODEL_PATTERNS_ATTR, ()) or ())
    for module in model.modules():
        if isinstance(module, CastedLinear):
            module.float()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if is_scalar_param(name, param, extra) and param.dtype != torch.float32:
                param.data = param.data.float()


def prepare_for_device(model: nn.Module, device: Union[str, torch.device], dtype: Optional[str] = None,
                       attention_backend: Optional[str] = None) -> nn.Module:
    """Move ``model`` to ``device`` in the baseline's dtype layout and pick its attention backend.

    :param dtype: ``"auto"``, ``"bf16"`` or ``"fp32"``; default ``model.config.dtype``.
    :param attention_backend: default ``model.config.attention_backend``.
    :return: the same model, with ``model.compute_dtype``, ``model.attention_backend`` and
        ``model.fused_ce`` (Triton CE on CUDA under ``[model] fused_kernels = "auto"``) set.
    :raises RecipeError: a forced attention backend that cannot run here.
    """
    device = torch.device(device)
    cfg = getattr(model, "config", None)
    setting = dtype if dtype is not None else getattr(cfg, "dtype", "auto")
    requested = attention_backend if attention_backend is not None else getattr(cfg, "attention_backend", "auto")
    target = resolve_dtype(setting, device)
    backend = resolve_backend(requested, device, target)
    model.to(device)
    if target == torch.bfloat16:
        model.bfloat16()
        restore_fp32_params(model)
    else:
        model.float()
    model.compute_dtype = target
    model.set_attention_backend(backend)
    if hasattr(model, "fused_ce"):
        model.fused_ce = False
        if device.type == "cuda":  # imported only here, so CPU runs do not ship the kernels' code
            from golf_core.model.softcap_ce import enable_triton_softcap_ce

            model.fused_ce = enable_triton_softcap_ce(device, getattr(cfg, "fused_kernels", "auto")).used
    return model
