"""QuantizedModel: what a quantizer hands to serialization, and what the artifact gives back.

A ``QuantizedModel`` is a flat ``dict`` of tensors (storage key -> tensor) plus a JSON-able
``meta`` dict. ``meta["entries"]`` maps every state-dict name to an *entry* saying how to rebuild
that tensor from the stored ones:

* ``{"codec": "raw", "dtype": D, "data": KEY}``: the stored tensor itself, cast back to ``D``
  (passthrough tensors, non-float buffers).
* ``{"codec": "per_row", "dtype": D, "q": KEY, "scale": KEY}``: ``q.float() * scale.float()`` with
  one scale per row (dim 0), cast to ``D``.
* ``{"codec": "per_tensor", "dtype": D, "q": KEY, "scale": KEY}``: one 0-dim scale for the tensor.

Other codecs (a rotation to undo, say) belong to the plugin that wrote them; the core decoder
(:mod:`golf_core.quant.dequant`) refuses them by name. Entries may carry extra keys (bits, clip
multiplier) for reports; decoders ignore keys they do not need.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

#: Value of ``meta["format"]`` written by every golf quantizer.
QUANT_FORMAT = "golf-quant/1"

#: Codecs the core decoder understands.
CORE_CODECS = ("raw", "per_row", "per_tensor")

#: Tensor dtypes a QuantizedModel may hold (and serialization may write), by their short names.
DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}


def dtype_name(dtype: torch.dtype) -> str:
    """The short name of a torch dtype (``torch.bfloat16`` -> ``"bfloat16"``)."""
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise ValueError(f"dtype {dtype} is not supported in a QuantizedModel")
    return name


def dtype_from_name(name: str) -> torch.dtype:
    """The torch dtype of a short name written by :func:`dtype_name`."""
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype name {name!r}") from None


@dataclass
class QuantizedModel:
    """A quantized state dict: ``tensors`` (storage key -> CPU tensor) and JSON-able ``meta``.

    ``meta["entries"][name]`` says how to decode state-dict tensor ``name`` (module docstring).
    """

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=lambda: {"format": QUANT_FORMAT, "entries": {}})

    @property
    def entries(self) -> dict[str, dict[str, Any]]:
        """The per-tensor decode entries, in state-dict order."""
        return self.meta.setdefault("entries", {})

    def add(self, name: str, entry: dict[str, Any], **stored: torch.Tensor) -> None:
        """Add state-dict tensor ``name``: each keyword ``role=tensor`` is stored under
        ``name + "." + role`` (``data`` is stored under ``name`` itself) and the entry records
        the storage key for the role."""
        if name in self.entries:
            raise ValueError(f"tensor {name!r} is already in the QuantizedModel")
        entry = dict(entry)
        for role, tensor in stored.items():
            key = name if role == "data" else f"{name}.{role}"
            if key in self.tensors:
                raise ValueError(f"storage key {key!r} is already used")
            self.tensors[key] = tensor.detach().to("cpu").contiguous()
            entry[role] = key
        self.entries[name] = entry

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def payload_bytes(self) -> int:
        """Sum of the stored tensors' raw bytes (before serialization and compression)."""
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    def check(self) -> None:
        """Raise ``ValueError`` if ``meta`` is not JSON-able, a dtype is unsupported, or an
        entry points at a missing tensor."""
        json.dumps(self.meta, allow_nan=False)
        for key, t in self.tensors.items():
            dtype_name(t.dtype)
        for name, entry in self.entries.items():
            if "codec" not in entry:
                raise ValueError(f"entry {name!r} has no codec")
            for role in ("data", "q", "scale"):
                if role in entry and entry[role] not in self.tensors:
                    raise ValueError(f"entry {name!r}: {role} key {entry[role]!r} is not stored")
