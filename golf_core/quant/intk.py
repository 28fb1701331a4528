"""Per-row int-k with std-based clipping (SDClip, research/pg_core.md §5.7) and round-to-nearest.

For a row ``w`` the clip value is ``c = k * std(w)`` (unbiased std) and the step is
``scale = c / (2^(b-1) - 1)``, clamped to at least 1e-10 and **rounded to fp16 before use**;
``q = clamp(round(w / scale), ±(2^(b-1) - 1))``, stored as int8 (``b <= 8``). A larger ``k``
means a coarser step, lower entropy and fewer compressed bytes.

The state-dict quantizer here is the round-to-nearest counterpart of #1394's GPTQ export: int-b
matrices, an int8 embedding with its own clip multiplier, fp16 passthrough for small tensors.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import torch

from .int8 import INT8_KEEP_FLOAT_MAX_NUMEL, passthrough_entry
from .quantized import QUANT_FORMAT, QuantizedModel, dtype_name

#: #1394's defaults: int6 matrices with k = 12.85, int8 embedding with k = 20.
MATRIX_BITS = 6
MATRIX_CLIP_SIGMAS = 12.85
EMBED_BITS = 8
EMBED_CLIP_SIGMAS = 20.0
#: Name rule for the embedding (``"tok_emb" in name``).
EMBED_PATTERN = "tok_emb"


def clip_range(bits: int) -> int:
    """The largest level of a symmetric signed ``bits``-bit code: ``2^(bits-1) - 1``."""
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in 2..8 (int8 storage), got {bits}")
    return 2 ** (bits - 1) - 1


def sdclip_scale(w: torch.Tensor, bits: int, clip_sigmas: float) -> torch.Tensor:
    """Per-row SDClip step of a 2-D tensor: ``k * std(row) / (2^(b-1)-1)``, clamped to >= 1e-10,
    as fp16 (shape ``[rows]``)."""
    w32 = w.detach().float()
    if w32.ndim != 2:
        raise ValueError(f"sdclip_scale needs a 2-D tensor, got shape {tuple(w32.shape)}")
    if w32.shape[1] < 2:
        std = torch.zeros(w32.shape[0])
    else:
        std = w32.std(dim=1, unbiased=True)
    return (clip_sigmas * std / clip_range(bits)).clamp_min(1e-10).to(torch.float16)


def quantize_rows_rtn(w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Round-to-nearest with per-row ``scale`` (used as ``scale.float()``): int8 codes in ±(2^(b-1)-1)."""
    cr = clip_range(bits)
    s = scale.float()[:, None]
    return torch.clamp(torch.round(w.detach().float() / s), -cr, cr).to(torch.int8).contiguous()


def quantize_tensor_intk(w: torch.Tensor, bits: int = MATRIX_BITS,
                         clip_sigmas: float = MATRIX_CLIP_SIGMAS) -> tuple[torch.Tensor, torch.Tensor]:
    """SDClip + round-to-nearest of one 2-D tensor: ``(q int8 [rows, cols], scale fp16 [rows])``."""
    scale = sdclip_scale(w, bits, clip_sigmas)
    return quantize_rows_rtn(w, scale, bits), scale


def quantize_state_dict_intk(
    state_dict: Mapping[str, torch.Tensor],
    bits: int = MATRIX_BITS,
    clip_sigmas: float = MATRIX_CLIP_SIGMAS,
    embed_bits: int = EMBED_BITS,
    embed_clip_sigmas: float = EMBED_CLIP_SIGMAS,
    embed_pattern: str = EMBED_PATTERN,
    keep_float_max_numel: int = INT8_KEEP_FLOAT_MAX_NUMEL,
    control_patterns: Iterable[str] = (),
) -> QuantizedModel:
    """Quantize every 2-D float tensor above ``keep_float_max_numel`` elements with SDClip + RTN.

    Tensors whose name contains ``embed_pattern`` use ``embed_bits``/``embed_clip_sigmas``.
    Other tensors pass through: floats in fp16 (names in ``control_patterns`` in fp32), non-floats
    as they are. Entries are ``per_row`` with ``bits`` and ``clip_sigmas`` recorded.
    """
    qm = QuantizedModel(meta={"format": QUANT_FORMAT, "scheme": "sdclip_rtn", "entries": {}})
    patterns = tuple(control_patterns)
    for name, tensor in state_dict.items():
        t = tensor.detach().to("cpu")
        if not t.is_floating_point() or t.numel() <= keep_float_max_numel or t.ndim != 2:
            passthrough_entry(qm, name, t, patterns, control_dtype=torch.float32 if patterns else None)
            continue
        b, k = (embed_bits, embed_clip_sigmas) if embed_pattern and embed_pattern in name else (bits, clip_sigmas)
        q, s = quantize_tensor_intk(t, b, k)
        qm.add(name, {"codec": "per_row", "dtype": dtype_name(t.dtype), "bits": b, "clip_sigmas": k},
               q=q, scale=s)
    return qm
