"""golf plugin ``qk-gain``: initial per-head query gain (techniques §1)."""
from __future__ import annotations

from pydantic import Field

from golf_core import GolfError, Options, TechniqueInfo, hookimpl
from golf_qk_gain.gain import set_qk_gain


class QKGainOptions(Options):
    """Options of ``qk-gain``."""

    init: float = Field(4.0, gt=0, description="initial per-head query gain: 4.0 (#1394), 5.0 (#1413/#1423), 5.25 (#1493)")


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="qk-gain", options=QKGainOptions,
        summary="learnable per-head query gain after q/k RMSNorm and RoPE, initialized to `init`",
        lineage=["#1125", "#1394", "#1413", "#1493"], legality="fixed-predictor", required_on_load=False,
        reported_delta="1.5 -> 4.0: -0.0039 BPB (#1125); 4 -> 5: -0.0004..-0.0008 (#1394 -> #1413)",
    ))


@hookimpl
def golf_build_model(model, opts):
    """Set every attention's ``q_gain`` to ``opts.init``."""
    if set_qk_gain(model, opts.init) == 0:
        raise GolfError("qk-gain: the model has no attention with a q_gain parameter")
    return model
