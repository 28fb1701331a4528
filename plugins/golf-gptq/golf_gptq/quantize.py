"""GPTQ over a whole state dict (#1394's export and its successors): int-b matrices, an int-b'
embedding, optional int8 gates and LQER corrections, fp16 rest.

For every tensor, in state-dict order:

* with ``gate_int8`` on, a 2-D float tensor whose name matches ``gate_pattern`` (fnmatch) and whose
  size is in ``[gate_min_numel, gate_max_numel]``: symmetric int8 per row, step ``rowmax/127``
  (quant-gate, #1736; checked before the size threshold, so a small gate is not passed through);
* a 2-D float tensor with more than ``min_numel`` elements **and** a Hessian: GPTQ with SDClip
  (``embed_*`` settings when the name contains ``embed_pattern``; else ``mlp_clip_sigmas`` when
  it contains ``mlp_pattern``, ``attn_clip_sigmas`` when it contains ``attn_pattern``, else the
  matrix ``clip_sigmas``: per-group clip, #1626); the step is Hessian-aware (#1412) when
  ``hessian_clip_lambda > 0``;
* the embedding without a Hessian (untied): SDClip round-to-nearest;
* everything else: passthrough, floats in fp16 (#1394 keeps even control tensors in fp16),
  non-floats as they are.

With ``lqer_top_k > 0`` the ``lqer_top_k`` quantized tensors with the largest error
``||W - q*s||_F`` also get a rank-``lqer_rank`` correction of that error (:mod:`golf_gptq.lqer`, #1797).

A ``transform`` (MR-GPTQ's rotation) may map ``(W, H)`` to an equivalent pair before GPTQ; its
codec name and metadata go into the entry, and the plugin that owns it decodes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Mapping, Optional, Protocol

import torch
from torch import Tensor

from golf_core.api import (QUANT_FORMAT, QuantizedModel, clip_range, dtype_name, passthrough_entry, quantize_rows_rtn,
                           sdclip_scale)

from .gptq import BLOCK_SIZE, DAMP, PreparedHessian, gptq_quantize_prepared, prepare_hessian
from .lqer import LQER_CODEC, LQERConfig, add_lqer_entry, lqer_factors
from .sdclip import hessian_sdclip_scale


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
    hessian_clip_lambda: float = 0.0
    mlp_clip_sigmas: Optional[float] = None
    attn_clip_sigmas: Optional[float] = None
    mlp_pattern: str = ".mlp."
    attn_pattern: str = ".attn."
    gate_int8: bool = False
    gate_pattern: str = "*.attn_gate_w"
    gate_min_numel: int = 32
    gate_max_numel: int = 8192
    lqer: LQERConfig = field(default_factory=LQERConfig)
    #: floor every step at ``1 / (2^(b-1)-1)``, as the #1306 lineage's scales do (#1229, #1306, #1423:
    #: ``clamp_min(1 / clip_range)``); off in #1394 (floor 1e-10)
    scale_floor: bool = False
    #: GPTQ the embedding (#1394, #1423); False: round-to-nearest rows as #1229/#1306's int8 embedding
    embed_gptq: bool = True

    def role(self, name: str) -> str:
        """``"embed"``, ``"mlp"``, ``"attn"`` or ``"matrix"``: whose bits and clip apply to ``name``."""
        if self.embed_pattern and self.embed_pattern in name:
            return "embed"
        if self.mlp_clip_sigmas is not None and self.mlp_pattern and self.mlp_pattern in name:
            return "mlp"
        if self.attn_clip_sigmas is not None and self.attn_pattern and self.attn_pattern in name:
            return "attn"
        return "matrix"

    def is_gate(self, name: str, t: Tensor) -> bool:
        """Whether ``t`` takes the int8 per-row gate path."""
        return (self.gate_int8 and t.is_floating_point() and t.ndim == 2 and fnmatchcase(name, self.gate_pattern)
                and self.gate_min_numel <= t.numel() <= self.gate_max_numel)


def quantize_gate_int8_rows(w: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric int8 per row (#1736's quant-gate): ``s = max|row|/127`` (>= 1e-10, fp16),
    ``q = clamp(round(w/s), -127, 127)``; decoded by the core ``per_row`` codec."""
    W = w.detach().float()
    s = (W.abs().amax(dim=1).clamp_min(1e-10) / 127.0).to(torch.float16)
    q = torch.clamp(torch.round(W / s.float().view(-1, 1)), -127, 127).to(torch.int8)
    return q.contiguous(), s


class WeightTransform(Protocol):
    """An exact re-parametrization applied before GPTQ (e.g. a rotation ``W R``, ``R^T H R``)."""

    codec: str

    def forward(self, name: str, W: Tensor, H: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor], dict[str, Any]]:
        """``(W', H', entry metadata)`` for tensor ``name``."""


@dataclass
class _Plan:
    name: str
    kind: str  # "gptq" | "rtn" | "gate" | "passthrough"
    role: str = ""  # "matrix" | "mlp" | "attn" | "embed"
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
            if config.is_gate(name, t):
                self.plans.append(_Plan(name, "gate"))
                continue
            role = config.role(name)
            is_embed = role == "embed"
            big = t.is_floating_point() and t.ndim == 2 and t.numel() > config.min_numel
            H = hessians.get(name)
            if big and H is not None and (config.embed_gptq or not is_embed):
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
            self.plans.append(_Plan(name, kind, role, W, prep, extra))
        if config.lqer.top_k > 0 and transform is not None:
            raise ValueError("LQER corrects the error of unrotated weights; it cannot be combined with a rotation")

    def settings(self, role: str, clip_sigmas: Optional[float]) -> tuple[int, float]:
        """``(bits, clip multiplier)`` for a role. ``clip_sigmas`` overrides the matrix multiplier
        and scales the MLP and attention ones by the same factor (what the budget fit searches);
        the embedding keeps its own."""
        c = self.config
        if role == "embed":
            return c.embed_bits, c.embed_clip_sigmas
        ratio = 1.0 if clip_sigmas is None else clip_sigmas / c.clip_sigmas
        if role == "mlp":
            return c.bits, c.mlp_clip_sigmas * ratio
        if role == "attn":
            return c.bits, c.attn_clip_sigmas * ratio
        return c.bits, c.clip_sigmas if clip_sigmas is None else clip_sigmas

    def scale_for(self, p: _Plan, bits: int, k: float) -> Tensor:
        """The per-row step of a planned tensor: Hessian-aware SDClip when it has a Hessian and
        ``hessian_clip_lambda > 0``, else plain SDClip."""
        lam = self.config.hessian_clip_lambda
        if p.prep is not None and lam > 0:
            return hessian_sdclip_scale(p.W, p.prep.diag, bits, k, lam)
        return sdclip_scale(p.W, bits, k)

    def quantize(self, clip_sigmas: Optional[float] = None) -> QuantizedModel:
        """The QuantizedModel at matrix clip multiplier ``clip_sigmas`` (default: the config's)."""
        qm = QuantizedModel(meta={"format": QUANT_FORMAT, "scheme": "gptq_sdclip", "entries": {}})
        codec = self.transform.codec if self.transform is not None else "per_row"
        coded: dict[str, tuple[Tensor, Tensor, dict[str, Any]]] = {}
        for p in self.plans:
            if p.kind in ("passthrough", "gate"):
                continue
            bits, k = self.settings(p.role, clip_sigmas)
            scale = self.scale_for(p, bits, k)
            if self.config.scale_floor:   # monotone fp16 rounding: the same as flooring before the cast
                scale = torch.clamp_min(scale, torch.tensor(1.0 / clip_range(bits)).to(scale.dtype))
            if p.kind == "gptq":
                q = gptq_quantize_prepared(p.W, p.prep, scale, bits, self.config.block_size)
            else:
                q = quantize_rows_rtn(p.W, scale, bits)
            entry = {"codec": codec, "dtype": dtype_name(self.state[p.name].dtype), "bits": bits, "clip_sigmas": k,
                     "method": p.kind, **p.extra}
            coded[p.name] = (q.cpu(), scale.cpu(), entry)
        corrections = lqer_factors({n: self.state[n] for n in coded}, {n: (q, s) for n, (q, s, _) in coded.items()},
                                   self.config.lqer)
        for p in self.plans:
            t = self.state[p.name]
            if p.kind == "passthrough":
                passthrough_entry(qm, p.name, t, (), store_dtype=torch.float16, control_dtype=None)
            elif p.kind == "gate":
                q, s = quantize_gate_int8_rows(t)
                qm.add(p.name, {"codec": "per_row", "dtype": dtype_name(t.dtype), "bits": 8, "method": "gate_int8_row"},
                       q=q, scale=s)
            elif p.name in corrections:
                q, s, entry = coded[p.name]
                add_lqer_entry(qm, p.name, {**entry, "codec": LQER_CODEC}, q, s, corrections[p.name])
            else:
                q, s, entry = coded[p.name]
                qm.add(p.name, entry, q=q, scale=s)
        c = self.config
        qm.meta["gptq"] = {"bits": c.bits, "embed_bits": c.embed_bits,
                           "clip_sigmas": self.settings("matrix", clip_sigmas)[1],
                           "embed_clip_sigmas": c.embed_clip_sigmas,
                           "block_size": c.block_size, "damp": c.damp, "act_order": c.act_order,
                           "hessian_clip_lambda": c.hessian_clip_lambda,
                           "mlp_clip_sigmas": self.settings("mlp", clip_sigmas)[1] if c.mlp_clip_sigmas is not None else None,
                           "attn_clip_sigmas": self.settings("attn", clip_sigmas)[1] if c.attn_clip_sigmas is not None else None,
                           "lqer": sorted(corrections)}
        return qm

    def quantized_names(self) -> list[str]:
        """Names that GPTQ (or the RTN fallback, or the gate path) quantizes."""
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
