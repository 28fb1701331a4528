"""GPTQ over a whole state dict (#1394's export): int-b matrices, an int-b' embedding, fp16 rest.

For every tensor, in state-dict order:

* a 2-D float tensor with more than ``min_numel`` elements **and** a Hessian: GPTQ with SDClip
  (``embed_*`` settings when the name contains ``embed_pattern``, else the matrix settings);
* the embedding without a Hessian (untied): SDClip round-to-nearest;
* everything else: passthrough, floats in fp16 (#1394 keeps even control tensors in fp16),
  non-floats as they are.

A ``transform`` (MR-GPTQ's rotation) may map ``(W, H)`` to an equivalent pair before GPTQ; its
codec name and metadata go into the entry, and the plugin that owns it decodes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Protocol

import torch
from torch import Tensor

from golf_core.api import QUANT_FORMAT, QuantizedModel, dtype_name, passthrough_entry, quantize_rows_rtn, sdclip_scale

from .gptq import BLOCK_SIZE, DAMP, PreparedHessian, gptq_quantize_prepared, prepare_hessian


@dataclass
class GPTQConfig:
    """Bit widths, clip multipliers and GPTQ settings (defaults: #1394)."""

    bits: int = 6
    clip_sigmas: float = 12.85
    embed_bits: int = 8
    embed_clip_sigmas: float = 20.0
    embed_pattern: str = "tok_emb"
    min_numel: int = 65_536
    block_size: int = BLOCK_SIZE
    damp: float = DAMP
    act_order: bool = True


class WeightTransform(Protocol):
    """An exact re-parametrization applied before GPTQ (e.g. a rotation ``W R``, ``R^T H R``)."""

    codec: str

    def forward(self, name: str, W: Tensor, H: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor], dict[str, Any]]:
        """``(W', H', entry metadata)`` for tensor ``name``."""


@dataclass
class _Plan:
    name: str
    kind: str  # "gptq" | "rtn" | "passthrough"
    role: str = ""  # "matrix" | "embed"
    W: Optional[Tensor] = None
    prep: Optional[PreparedHessian] = None
    extra: dict[str, Any] = field(default_factory=dict)


class GPTQModelQuantizer:
    """Plans every tensor once (transform, Hessian preparation), then :meth:`quantize` builds a
    QuantizedModel for a given matrix clip multiplier, cheaply enough to search it."""

    def __init__(self, state_dict: Mapping[str, Tensor], hessians: Mapping[str, Tensor],
                 config: GPTQConfig = GPTQConfig(), transform: Optional[WeightTransform] = None,
                 device: Optional[torch.device] = None):
        self.config = config
        self.transform = transform
        self.state = {k: v.detach() for k, v in state_dict.items()}
        self.hessians = dict(hessians)
        self.plans: list[_Plan] = []
        for name, t in self.state.items():
            is_embed = bool(config.embed_pattern) and config.embed_pattern in name
            big = t.is_floating_point() and t.ndim == 2 and t.numel() > config.min_numel
            H = hessians.get(name)
            if big and H is not None:
                kind = "gptq"
            elif big and is_embed:
                kind = "rtn"
            else:
                self.plans.append(_Plan(name, "passthrough"))
                continue
            dev = H.device if H is not None else (device or torch.device("cpu"))
            W = t.to(device=dev, dtype=torch.float32)
            extra: dict[str, Any] = {}
            if transform is not None:
                W, H, extra = transform.forward(name, W, H)
            prep = prepare_hessian(H, config.damp, config.act_order) if kind == "gptq" else None
            self.plans.append(_Plan(name, kind, "embed" if is_embed else "matrix", W, prep, extra))

    def settings(self, role: str, clip_sigmas: Optional[float]) -> tuple[int, float]:
        """``(bits, clip multiplier)`` for a role; ``clip_sigmas`` overrides the matrix one."""
        c = self.config
        if role == "embed":
            return c.embed_bits, c.embed_clip_sigmas
        return c.bits, c.clip_sigmas if clip_sigmas is None else clip_sigmas

    def quantize(self, clip_sigmas: Optional[float] = None) -> QuantizedModel:
        """The QuantizedModel at matrix clip multiplier ``clip_sigmas`` (default: the config's)."""
        qm = QuantizedModel(meta={"format": QUANT_FORMAT, "scheme": "gptq_sdclip", "entries": {}})
        codec = self.transform.codec if self.transform is not None else "per_row"
        for p in self.plans:
            t = self.state[p.name]
            if p.kind == "passthrough":
                passthrough_entry(qm, p.name, t, (), store_dtype=torch.float16, control_dtype=None)
                continue
            bits, k = self.settings(p.role, clip_sigmas)
            scale = sdclip_scale(p.W, bits, k)
            if p.kind == "gptq":
                q = gptq_quantize_prepared(p.W, p.prep, scale, bits, self.config.block_size)
            else:
                q = quantize_rows_rtn(p.W, scale, bits)
            entry = {"codec": codec, "dtype": dtype_name(t.dtype), "bits": bits, "clip_sigmas": k, "method": p.kind,
                     **p.extra}
            qm.add(p.name, entry, q=q.cpu(), scale=scale.cpu())
        qm.meta["gptq"] = {"bits": self.config.bits, "embed_bits": self.config.embed_bits,
                           "clip_sigmas": self.settings("matrix", clip_sigmas)[1],
                           "embed_clip_sigmas": self.config.embed_clip_sigmas,
                           "block_size": self.config.block_size, "damp": self.config.damp,
                           "act_order": self.config.act_order}
        return qm

    def quantized_names(self) -> list[str]:
        """Names that GPTQ (or the RTN fallback) quantizes."""
        return [p.name for p in self.plans if p.kind != "passthrough"]


def gptq_quantize_state_dict(state_dict: Mapping[str, Tensor], hessians: Mapping[str, Tensor],
                             config: GPTQConfig = GPTQConfig(), clip_sigmas: Optional[float] = None,
                             transform: Optional[WeightTransform] = None) -> QuantizedModel:
    """One-shot :class:`GPTQModelQuantizer` ``.quantize(clip_sigmas)``."""
    return GPTQModelQuantizer(state_dict, hessians, config, transform).quantize(clip_sigmas)


def hessian_errors(qm_decoded: Mapping[str, Tensor], state_dict: Mapping[str, Tensor],
                   hessians: Mapping[str, Tensor]) -> dict[str, dict[str, float]]:
    """Per tensor with a Hessian: ``tr(E H E^T)`` (absolute) and its ratio to ``tr(W H W^T)``."""
    out = {}
    for name, H in hessians.items():
        if name not in qm_decoded or name not in state_dict:
            continue
        W = state_dict[name].detach().double().to(H.device)
        E = W - qm_decoded[name].detach().double().to(H.device)
        Hd = H.double()
        err = float(((E @ Hd) * E).sum())
        ref = float(((W @ Hd) * W).sum())
        out[name] = {"hessian_error": err, "hessian_error_rel": err / ref if ref > 0 else 0.0}
    return out
