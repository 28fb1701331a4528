"""Who fills each model seam: two plugins that replace the same seam are refused.

``golf_build_model`` transforms run in recipe order, so when two plugins both replace, say,
``block.mlp.activation``, the later one silently wins and the earlier one does nothing.
:func:`seam_owner_check` is called after each transform, takes a snapshot of the seams after each
plugin (object identities for module seams, values for ``ln_scale``, the ``Skips`` type) and
raises ``PluginError`` naming both plugins and the seam when a second plugin changes one.
"""
from __future__ import annotations

from typing import Any, Optional

from torch import nn

from ..errors import PluginError


def seam_snapshot(model: nn.Module) -> Optional[dict[str, Any]]:
    """What fills each replaceable seam of ``model`` (None when it is not a golf GPT)."""
    try:
        blocks = list(model.blocks)
        return {
            "block.attn.rotary": tuple(id(b.attn.rotary) for b in blocks),
            "block.attn.out_transform": tuple(id(b.attn.out_transform) for b in blocks),
            "block.attn.out_gate": tuple(id(b.attn.out_gate) for b in blocks),
            "model.embed_transform": id(model.embed_transform),
            "model.embed_post_norm": id(model.embed_post_norm),
            "model.trunk": id(model.trunk),
            "block.mlp.activation": tuple(id(b.mlp.activation) for b in blocks),
            "block.ln_scale": tuple(float(b.ln_scale) for b in blocks),
            "model.skips": type(model.skips).__name__,
        }
    except (AttributeError, TypeError):
        return None


def seam_owner_check(model: nn.Module):
    """A callback for ``ActivePlugins.transform(..., after=...)`` over the model transforms
    that raises ``PluginError`` when a second plugin replaces a seam another one filled."""
    owners: dict[str, str] = {}
    state = {"snap": seam_snapshot(model)}

    def after(name: str, value: nn.Module) -> None:
        snap = seam_snapshot(value)
        before = state["snap"]
        state["snap"] = snap
        if snap is None or before is None:
            return
        for seam, now in snap.items():
            if before.get(seam) == now:
                continue
            if seam in owners and owners[seam] != name:
                raise PluginError(f"plugins {owners[seam]!r} and {name!r} both replace the model seam {seam}; "
                                  f"the later would silently win: keep one of them")
            owners[seam] = name

    return after
