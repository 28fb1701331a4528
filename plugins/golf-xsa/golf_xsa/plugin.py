"""golf plugin ``xsa``: exclusive self attention (pg_core §5.2)."""
from __future__ import annotations

from pydantic import Field

from golf_core import Options, TechniqueInfo, hookimpl
from golf_xsa.xsa import install_xsa


class XSAOptions(Options):
    """Options of ``xsa``."""

    last_n: int = Field(11, ge=1, description="apply XSA to the last N physical layers (11 = all 11 in #1394; more than the model has = all)")


@hookimpl
def golf_register(register):
    """Declare the technique."""
    register(TechniqueInfo(
        name="xsa", options=XSAOptions,
        summary="exclusive self attention: remove each head's output component along its own normalized value",
        lineage=["#1019", "#1060", "#1394"], legality="fixed-predictor", required_on_load=True,
        reported_delta="part of the #1394 stack (XSA on all 11 layers); no isolated ablation in the seeds",
    ))


@hookimpl
def golf_build_model(model, opts):
    """Install XSA as ``out_transform`` on the last ``last_n`` blocks."""
    install_xsa(model, opts.last_n)
    return model
