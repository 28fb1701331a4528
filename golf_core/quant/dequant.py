"""Decode a QuantizedModel into a float state dict (the core codecs: raw, per_row, per_tensor).

``dequantize(qm, template)`` returns ``{name: tensor}`` in the template's dtypes, ready for
``model.load_state_dict(..., strict=True)``. A plugin that wrote its own codec passes a decoder
for it (``decoders={"my_codec": fn}``) and reuses :func:`decode_entry` for the rest.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

import torch

from ..errors import ArtifactError
from .quantized import CORE_CODECS, QuantizedModel, dtype_from_name

#: A decoder: ``fn(name, entry, tensors) -> Tensor`` (float, any dtype; cast afterwards).
Decoder = Callable[[str, Mapping[str, Any], Mapping[str, torch.Tensor]], torch.Tensor]


def _stored(name: str, entry: Mapping[str, Any], role: str, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
    key = entry.get(role)
    if not isinstance(key, str) or key not in tensors:
        raise ArtifactError(f"quantized tensor {name!r}: its {role!r} tensor ({key!r}) is missing")
    return tensors[key]


def _entry_dtype(name: str, entry: Mapping[str, Any]) -> torch.dtype:
    try:
        return dtype_from_name(entry.get("dtype", "float32"))
    except ValueError:
        raise ArtifactError(f"quantized tensor {name!r}: unknown dtype {entry.get('dtype')!r}") from None


def decode_entry(name: str, entry: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Decode one core-codec entry into a tensor of the entry's recorded dtype.

    ``per_row``: ``q.float() * scale.float()`` broadcast over dim 0; ``per_tensor``: times the
    0-dim scale; ``raw``: the stored tensor. Raises ``ArtifactError`` for any other codec.
    """
    codec = entry.get("codec")
    dtype = _entry_dtype(name, entry)
    if codec == "raw":
        return _stored(name, entry, "data", tensors).to(dtype).contiguous()
    if codec == "per_row":
        q = _stored(name, entry, "q", tensors)
        s = _stored(name, entry, "scale", tensors).to(torch.float32)
        if q.ndim < 1 or s.numel() != q.shape[0]:
            raise ArtifactError(f"quantized tensor {name!r}: {s.numel()} scales for {tuple(q.shape)} codes")
        return (q.float() * s.view(q.shape[0], *([1] * (q.ndim - 1)))).to(dtype).contiguous()
    if codec == "per_tensor":
        q = _stored(name, entry, "q", tensors)
        s = _stored(name, entry, "scale", tensors)
        if s.numel() != 1:
            raise ArtifactError(f"quantized tensor {name!r}: per_tensor scale has {s.numel()} elements")
        return (q.float() * float(s.float().item())).to(dtype).contiguous()
    raise ArtifactError(
        f"quantized tensor {name!r} uses codec {codec!r}, which golf_core.quant cannot decode "
        f"(core codecs: {', '.join(CORE_CODECS)}); the plugin that wrote it must be active"
    )


def dequantize(
    qm: QuantizedModel,
    template: Optional[Mapping[str, torch.Tensor]] = None,
    decoders: Optional[Mapping[str, Decoder]] = None,
    strict: bool = True,
) -> dict[str, torch.Tensor]:
    """Decode every entry of ``qm`` into a state dict.

    :param template: e.g. ``model.state_dict()`` of a freshly built model; each decoded tensor is
        checked against its shape and cast to its dtype. ``None``: the recorded dtypes.
    :param decoders: extra codec name -> decoder, tried before the core codecs.
    :param strict: with a template, the names must match exactly.
    :raises ArtifactError: unknown codec, missing tensor, shape or name mismatch.
    """
    decoders = dict(decoders or {})
    entries = qm.meta.get("entries")
    if not isinstance(entries, dict):
        raise ArtifactError("quantized model has no 'entries' in its meta")
    if template is not None and strict:
        missing = [k for k in template if k not in entries]
        extra = [k for k in entries if k not in template]
        if missing or extra:
            raise ArtifactError(
                f"quantized model does not match the model: missing {missing[:3]}, unexpected {extra[:3]}"
            )
    out: dict[str, torch.Tensor] = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            raise ArtifactError(f"quantized tensor {name!r}: entry is not a table")
        fn = decoders.get(entry.get("codec"))
        t = fn(name, entry, qm.tensors) if fn is not None else decode_entry(name, entry, qm.tensors)
        if template is not None and name in template:
            ref = template[name]
            if tuple(t.shape) != tuple(ref.shape):
                raise ArtifactError(
                    f"quantized tensor {name!r} has shape {tuple(t.shape)}, the model expects {tuple(ref.shape)}"
                )
            t = t.to(ref.dtype).contiguous()
        out[name] = t
    return out
