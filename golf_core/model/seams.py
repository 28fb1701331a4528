"""The seams of ``GPT`` that plugins replace, their baseline defaults, and an inventory.

Every seam is a plain attribute (a module, a Parameter or a float); a plugin replaces it in
``golf_build_model`` before ``prepare_for_device``, and ``torch.compile(fullgraph=True)`` still
sees an ordinary ``nn.Module``. See ``golf_core.model`` for the list and an example per seam.
"""
from __future__ import annotations

from torch import Tensor, nn


class IdentityOutput(nn.Module):
    """Default ``block.attn.out_transform``: ``(y [B,T,H,D], v [B,T,Hkv,D]) -> y`` unchanged."""

    def forward(self, y: Tensor, v: Tensor) -> Tensor:
        """Return the attention output ``y`` as is."""
        return y


class IdentityGate(nn.Module):
    """Default ``block.attn.out_gate``: ``(y [B,T,H,D], x [B,T,dim], q_raw [B,T,dim]) -> y``
    unchanged (``x`` is the attention input, ``q_raw`` the query projection before RoPE)."""

    def forward(self, y: Tensor, x: Tensor, q_raw: Tensor) -> Tensor:
        """Return the attention output ``y`` as is."""
        return y


class IdentityEmbed(nn.Module):
    """Default ``model.embed_transform`` and ``model.embed_post_norm``: ``(e [B,T,d], ids [B,T]) -> e``
    unchanged (``e`` is the raw token embedding before the embedding RMSNorm, resp. the normed
    stream after it)."""

    def forward(self, e: Tensor, ids: Tensor) -> Tensor:
        """Return the token embeddings ``e`` as is."""
        return e


def describe_seams(model: nn.Module) -> dict:
    """What fills each seam of ``model`` right now, as plain JSON-able data (for manifests).

    Per-block entries list one value per physical block.
    """
    blocks = list(model.blocks)
    return {
        "schedule": model.schedule.to_dict(),
        "skips": type(model.skips).__name__,
        "num_skips": model.skips.num_skips,
        "attention_backend": model.attention_backend,
        "rotary": [f"{type(b.attn.rotary).__name__}(rope_dims={getattr(b.attn.rotary, 'rope_dims', None)})" for b in blocks],
        "out_transform": [type(b.attn.out_transform).__name__ for b in blocks],
        "out_gate": [type(b.attn.out_gate).__name__ for b in blocks],
        "embed_transform": type(model.embed_transform).__name__,
        "embed_post_norm": type(model.embed_post_norm).__name__,
        "trunk": type(model.trunk).__name__,
        "ln_scale": [float(b.ln_scale) for b in blocks],
        "mlp_activation": [type(b.mlp.activation).__name__ for b in blocks],
        "mlp_fused": [type(b.mlp.fused).__name__ if getattr(b.mlp, "fused", None) is not None else None for b in blocks],
        "fused_ce": bool(getattr(model, "fused_ce", False)),
    }

