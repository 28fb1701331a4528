"""golf plugin ``muon-wd-taper``: PR #1729's Muon weight-decay taper."""
from __future__ import annotations

from typing import Any

from golf_core import Options, TechniqueInfo, hookimpl
from golf_core.api import PluginError
from pydantic import Field

from .taper import MuonWDTaper


class MuonWDTaperOptions(Options):
    """Options of ``muon-wd-taper`` (defaults: PR #1729)."""

    start_frac: float = Field(0.70, ge=0, le=1, description="training fraction where the taper starts (WD_TAPER_START_FRAC)")
    final_mult: float = Field(0.50, ge=0, description="multiplier of Muon's decay at the end of training (WD_TAPER_FINAL_MULT)")


@hookimpl
def golf_register(register: Any) -> None:
    """Declare the technique."""
    register(TechniqueInfo(
        name="muon-wd-taper",
        options=MuonWDTaperOptions,
        summary="#1729: Muon's weight decay x1 until 70% of training, then linearly down to x0.5",
        lineage=["#1729"],
        legality="fixed-predictor",
        required_on_load=False,
        reported_delta="\"small but consistent\" (#1729 README; not isolated)",
    ))


@hookimpl
def golf_configure_optimizers(optimizers: Any, opts: MuonWDTaperOptions) -> Any:
    """Add the taper to the optimizers' per-step schedules."""
    if not optimizers.muons():
        raise PluginError("muon-wd-taper: the run has no Muon optimizer to taper")
    optimizers.step_schedules.append(MuonWDTaper(opts.start_frac, opts.final_mult))
    return optimizers
