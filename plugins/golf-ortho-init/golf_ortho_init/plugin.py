"""golf plugin ``ortho-init``: orthogonal init of the large linear layers (PR #1394 lineage)."""
from __future__ import annotations

from pydantic import Field

from golf_core import GolfError, Options, TechniqueInfo, hookimpl
from golf_ortho_init.ortho import orthogonal_init


class OrthoInitOptions(Options):
    """Options of ``ortho-init``."""

    gain: float = Field(1.0, gt=0, description="gain of orthogonal_ (1.0 in every record)")
    min_dim: int = Field(64, ge=1, description="a linear is re-initialized when both its dimensions are >= min_dim (64 in the records)")


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="ortho-init", options=OrthoInitOptions,
        summary="orthogonal_(gain) init of every linear with both dims >= min_dim, output projections stay zero",
        lineage=["#65", "#162", "#287", "#549", "#1019", "#1060", "#1204", "#1229", "#1306", "#1394", "#1413", "#1423", "#1493"],
        legality="fixed-predictor", required_on_load=False,
        reported_delta="no isolated ablation in the records (introduced with SmearGate and Muon WD, 1.1556 BPB)",
    ))


@hookimpl
def golf_build_model(model, opts):
    """Orthogonalize c_q/c_k/c_v/mlp.fc (every eligible linear) in ``named_modules`` order."""
    names = orthogonal_init(model, min_dim=opts.min_dim, gain=opts.gain)
    if not names and getattr(getattr(model, "config", None), "model_dim", opts.min_dim) >= opts.min_dim:
        raise GolfError(f"ortho-init: the model has no linear layer with both dimensions >= {opts.min_dim}")
    return model
