"""golf plugin ``partial-rope``: RoPE on the first ``rope_dims`` dims of each head (pg_core §5.2)."""
from __future__ import annotations

from pydantic import Field

from golf_core import Options, TechniqueInfo, hookimpl
from golf_partial_rope.rope import install_partial_rope, scaled_rope_dims


class PartialRopeOptions(Options):
    """Options of ``partial-rope``."""

    rope_dims: int = Field(16, ge=2, description="leading dims of each head that rotate (16 of 64 in #1394); even")
    fp32_angles: bool = Field(
        False, description="positions and angles in float32 (#1530 on: `inv_freq.float()`); off: in the "
        "model's dtype, bf16 on the GPU (#1394's table, positions above 256 rounded)")


def _tiny(opts: PartialRopeOptions, recipe) -> PartialRopeOptions:
    """Keep the fraction of a 64-dim head: 16 of 64 -> 4 of the tiny model's 16."""
    m = recipe.model
    return opts.model_copy(update={"rope_dims": scaled_rope_dims(opts.rope_dims, m.model_dim // m.num_heads)})


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="partial-rope", options=PartialRopeOptions,
        summary="rotary position embedding on the first rope_dims dims of each head; the rest pass through",
        lineage=["#1394"], legality="fixed-predictor", required_on_load=True,
        reported_delta="part of the #1394 stack; no isolated ablation in the seeds", tiny=_tiny,
    ))


@hookimpl
def golf_build_model(model, opts):
    """Install the partial rotary on every attention."""
    install_partial_rope(model, opts.rope_dims, fp32_angles=opts.fp32_angles)
    return model
