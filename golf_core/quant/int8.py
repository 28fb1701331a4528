"""The naive baseline's per-row int8 quantizer, exactly (research/pg_core.md §4.7).

* non-float tensors: stored as they are;
* float tensors with ``numel <= 65_536``: kept as floats; names matching a control pattern in
  fp32, other fp32/bf16 tensors in fp16 (the original dtype is recorded);
* 2-D float tensors above that: per row ``clip = quantile(|w|, 0.9999984)``, ``w`` clipped to
  ``±clip``, ``scale = (clip / 127).clamp_min(1 / 127)``, ``q = round(w / scale)`` clamped to
  ``±127`` as int8; the scale is stored in fp16 (``q`` is computed with the fp32 scale, as the
  baseline does);
* other float tensors: one fp32 scale per tensor, ``clip / 127`` (1.0 when ``clip == 0``).
"""
from __future__ import annotations

from typing import Iterable, Mapping

import torch

from .quantized import QUANT_FORMAT, QuantizedModel, dtype_name

#: The baseline's control-tensor name patterns (pg_core.md §4.2): kept in fp32 when passed through.
BASELINE_CONTROL_PATTERNS: tuple[str, ...] = (
    "attn_scale", "attn_scales", "mlp_scale", "mlp_scales", "resid_mix", "resid_mixes",
    "q_gain", "skip_weight", "skip_weights",
)
#: Float tensors with at most this many elements are passed through, not quantized.
INT8_KEEP_FLOAT_MAX_NUMEL = 65_536
#: The per-row clip quantile (``INT8_CLIP_PERCENTILE = 99.99984`` / 100).
INT8_CLIP_Q = 99.99984 / 100.0
#: Label written to ``meta["scheme"]``.
INT8_SCHEME = "int8_clean_per_row_v1"


def quantize_tensor_int8(t: torch.Tensor, clip_q: float = INT8_CLIP_Q) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize one float tensor the baseline's way: ``(q int8, scale)``.

    2-D: per-row scales (fp16, shape ``[rows]``); anything else: a 0-dim fp32 scale.
    """
    t32 = t.detach().float()
    if t32.ndim == 2:
        if t32.numel():
            clip = torch.quantile(t32.abs(), clip_q, dim=1)
        else:
            clip = torch.zeros((t32.shape[0],), dtype=torch.float32)
        clipped = torch.maximum(torch.minimum(t32, clip[:, None]), -clip[:, None])
        scale = (clip / 127.0).clamp_min(1.0 / 127.0)
        q = torch.clamp(torch.round(clipped / scale[:, None]), -127, 127).to(torch.int8).contiguous()
        return q, scale.to(torch.float16).contiguous()
    clip_abs = float(torch.quantile(t32.abs().flatten(), clip_q).item()) if t32.numel() else 0.0
    scale = torch.tensor(clip_abs / 127.0 if clip_abs > 0 else 1.0, dtype=torch.float32)
    q = torch.clamp(torch.round(torch.clamp(t32, -clip_abs, clip_abs) / scale), -127, 127)
    return q.to(torch.int8).contiguous(), scale


def is_control(name: str, patterns: Iterable[str]) -> bool:
    """True when ``name`` contains one of the control patterns (substring match, as the baseline)."""
    return any(p in name for p in patterns)


def passthrough_entry(qm: QuantizedModel, name: str, t: torch.Tensor,
                      control_patterns: Iterable[str] = BASELINE_CONTROL_PATTERNS,
                      store_dtype: torch.dtype = torch.float16,
                      control_dtype: torch.dtype | None = torch.float32) -> None:
    """Store ``t`` under ``name`` as a ``raw`` entry with the baseline's passthrough rule.

    Non-float tensors are stored as they are. Float tensors matching a control pattern are stored
    in ``control_dtype`` (fp32 in the baseline; ``None`` applies ``store_dtype`` to them too);
    other fp32/bf16 tensors are stored in ``store_dtype``; fp16/fp64 tensors keep their dtype.
    The entry records the original dtype either way.
    """
    t = t.detach().to("cpu")
    orig = dtype_name(t.dtype)
    if not t.is_floating_point():
        stored = t
    elif control_dtype is not None and is_control(name, control_patterns):
        stored = t.to(control_dtype)
    elif t.dtype in (torch.float32, torch.bfloat16):
        stored = t.to(store_dtype)
    else:
        stored = t
    qm.add(name, {"codec": "raw", "dtype": orig}, data=stored.contiguous())


def quantize_state_dict_int8(
    state_dict: Mapping[str, torch.Tensor],
    control_patterns: Iterable[str] = BASELINE_CONTROL_PATTERNS,
    keep_float_max_numel: int = INT8_KEEP_FLOAT_MAX_NUMEL,
    clip_q: float = INT8_CLIP_Q,
) -> QuantizedModel:
    """Quantize a state dict with the baseline's int8 scheme (module docstring).

    :param state_dict: name -> tensor (any device; copied to CPU).
    :param control_patterns: name substrings whose small float tensors stay fp32.
    :return: a :class:`QuantizedModel` whose entries are ``raw``, ``per_row`` and ``per_tensor``.
    """
    patterns = tuple(control_patterns)
    qm = QuantizedModel(meta={"format": QUANT_FORMAT, "scheme": INT8_SCHEME, "entries": {}})
    for name, tensor in state_dict.items():
        t = tensor.detach().to("cpu").contiguous()
        if not t.is_floating_point() or t.numel() <= keep_float_max_numel:
            passthrough_entry(qm, name, t, patterns)
            continue
        q, s = quantize_tensor_int8(t, clip_q)
        codec = "per_row" if s.ndim > 0 else "per_tensor"
        qm.add(name, {"codec": codec, "dtype": dtype_name(t.dtype), "bits": 8}, q=q, scale=s)
    return qm
