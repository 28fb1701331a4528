"""golf plugin ``skip-gates``: sigmoid-gated U-Net skips (pg_core §5.2)."""
from __future__ import annotations

from golf_core import NoOptions, TechniqueInfo, hookimpl
from golf_skip_gates.gates import install_skip_gates


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="skip-gates", options=NoOptions,
        summary="U-Net skips as lerp(w*skip, x, sigmoid(g)) with per-channel gates g (init 0)",
        lineage=["#1394"], legality="fixed-predictor", required_on_load=True,
        reported_delta="part of the #1394 stack (SKIP_GATES_ENABLED=1); no isolated ablation in the seeds",
    ))


@hookimpl
def golf_build_model(model):
    """Replace ``model.skips`` with the gated version (same slot count); the gates are control
    tensors (``model.golf_control_patterns``)."""
    install_skip_gates(model)
    return model
