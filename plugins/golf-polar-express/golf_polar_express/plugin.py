"""golf plugin ``polar-express``: PR #1787's per-iteration Newton-Schulz coefficients on the core Muon."""
from __future__ import annotations

from typing import Any

from golf_core import Options, TechniqueInfo, hookimpl
from golf_core.api import PluginError
from pydantic import Field

from .coefficients import install


class PolarExpressOptions(Options):
    """Options of ``polar-express`` (defaults: PR #1787 as run)."""

    batched_form: bool = Field(
        True, description="Newton-Schulz in #1787's arithmetic order (a [1, rows, cols] batch, transposed "
                          "before the norm, c*(A@A)); false: the core's #1394 order (same maths, other bf16 rounding)")


@hookimpl
def golf_register(register: Any) -> None:
    """Declare the technique."""
    register(TechniqueInfo(
        name="polar-express",
        options=PolarExpressOptions,
        summary="#1787: Muon's Newton-Schulz with the five per-iteration Polar Express tuples",
        lineage=["#1344", "#1787"],
        legality="fixed-predictor",
        required_on_load=False,
        reported_delta="not isolated (bundled in #1787's -0.00214 vs #1736)",
    ))


@hookimpl
def golf_configure_optimizers(optimizers: Any, opts: PolarExpressOptions) -> Any:
    """Install the table (and the arithmetic order) on every Muon of the run."""
    if install(optimizers, batched=opts.batched_form) == 0:
        raise PluginError("polar-express: the run has no Muon optimizer to change")
    return optimizers
