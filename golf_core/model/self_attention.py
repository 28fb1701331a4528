"""``CausalSelfAttention``: the baseline's attention with its q/k and output seams (pg_core §4.2, §5.2).

::

    q = c_q(x) -> [B,T,H,D];  k = c_k(x), v = c_v(x) -> [B,T,Hkv,D]
    q, k = rms_norm(q), rms_norm(k)          # per head, no weight
    q, k = rotary(q, k)                      # seam: Rotary(rope_dims)
    q = q * q_gain[None, None, :, None]      # seam: Parameter[H], init [model] qk_gain_init
    y = causal_attention(q, k, v, backend)   # FA3 / FA2 / SDPA, scale 1/sqrt(D); within the
                                             # segments of cu_seqlens when given (documents)
    y = out_transform(y, v)                  # seam: identity by default (XSA replaces it)
    y = out_gate(y, x, c_q(x))               # seam: identity by default (attention gates)
    return proj(y.reshape(B, T, H*D))        # proj zero-init
"""
from __future__ import annotations

from torch import Tensor, nn

import torch

from typing import Optional

from golf_core.model.attention import causal_attention, document_attention
from golf_core.model.layers import CastedLinear, rms_norm
from golf_core.model.rotary import Rotary
from golf_core.model.seams import IdentityGate, IdentityOutput


class CausalSelfAttention(nn.Module):
    """Causal GQA self-attention with named seams ``rotary``, ``q_gain``, ``out_transform``, ``out_gate``.

    :param dim: model width; ``head_dim = dim // num_heads``.
    :param num_heads: query heads ``H``.
    :param num_kv_heads: key/value heads ``Hkv`` (``H % Hkv == 0``).
    :param rope_base: RoPE base.
    :param qk_gain_init: initial value of every entry of ``q_gain``.
    """

    def __init__(self, dim: int, num_heads: int, num_kv_heads: int, rope_base: float, qk_gain_init: float):
        super().__init__()
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = dim // num_heads
        kv_dim = num_kv_heads * self.head_dim
        self.c_q = CastedLinear(dim, dim)
        self.c_k = CastedLinear(dim, kv_dim)
        self.c_v = CastedLinear(dim, kv_dim)
        self.proj = CastedLinear(dim, dim, zero_init=True)
        self.q_gain = nn.Parameter(torch.full((num_heads,), float(qk_gain_init), dtype=torch.float32))
        self.rotary: nn.Module = Rotary(self.head_dim, base=rope_base)
        self.out_transform: nn.Module = IdentityOutput()
        self.out_gate: nn.Module = IdentityGate()
        self.backend = "sdpa"  # set by GPT.set_attention_backend / prepare_for_device

    def transform_qk(self, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        """Per-head RMSNorm, then ``rotary``, then the per-head ``q_gain`` on q only."""
        q, k = self.rotary(rms_norm(q), rms_norm(k))
        return q * self.q_gain.to(q.dtype)[None, None, :, None], k

    def forward(self, x: Tensor, cu_seqlens: Optional[Tensor] = None, max_seqlen: int = 0) -> Tensor:
        """Attend over ``x [B, T, dim]`` causally; returns ``[B, T, dim]``. With ``cu_seqlens``
        (segments over the flattened ``B*T`` positions, ``golf_core.model.documents``) attention
        stays inside each segment; ``max_seqlen`` bounds a segment's length."""
        B, T, dim = x.shape
        q_raw = self.c_q(x)
        q = q_raw.view(B, T, self.num_heads, self.head_dim)
        k = self.c_k(x).view(B, T, self.num_kv_heads, self.head_dim)
        v = self.c_v(x).view(B, T, self.num_kv_heads, self.head_dim)
        q, k = self.transform_qk(q, k)
        if cu_seqlens is None:
            y = causal_attention(q, k, v, self.backend)
        else:
            y = document_attention(q, k, v, cu_seqlens, max_seqlen or T, self.backend)
        y = self.out_transform(y, v)
        y = self.out_gate(y, x, q_raw)
        return self.proj(y.reshape(B, T, dim))
