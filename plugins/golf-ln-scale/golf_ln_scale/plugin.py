"""golf plugin ``ln-scale``: 1/sqrt(layer_idx+1) on the normed block inputs (pg_core §5.2)."""
from __future__ import annotations

from golf_core import NoOptions, TechniqueInfo, hookimpl
from golf_ln_scale.scale import install_ln_scale


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="ln-scale", options=NoOptions,
        summary="scale both normed block inputs by 1/sqrt(physical layer index + 1)",
        lineage=["#1394"], legality="fixed-predictor", required_on_load=True,
        reported_delta="part of the #1394 stack (LN_SCALE=1); no isolated ablation in the seeds",
    ))


@hookimpl
def golf_build_model(model):
    """Set every physical block's ``ln_scale``."""
    install_ln_scale(model)
    return model
