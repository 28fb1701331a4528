"""golf plugin ``muon-eq-r``: MuonEq-R options on the core's Muon, via golf_configure_optimizers."""
from __future__ import annotations

from typing import Any

from golf_core import Options, TechniqueInfo, hookimpl
from pydantic import Field

from .configure import configure_muon_eq_r
from .optimizer import MOMENTUM, MOMENTUM_WARMUP_START, MOMENTUM_WARMUP_STEPS, MUON_WD


class MuonEqROptions(Options):
    """Options of ``muon-eq-r`` (defaults: PR #1394)."""

    row_normalize: bool = Field(True, description="scale each row of the Nesterov update to unit L2 norm before Newton-Schulz")
    weight_decay: float = Field(MUON_WD, ge=0.0, description="decoupled weight decay of the Muon matrices: p *= 1 - lr*wd with the scheduled lr")
    momentum: float = Field(MOMENTUM, ge=0.0, lt=1.0, description="Muon momentum after the warmup (replaces [train] muon_momentum)")
    momentum_warmup_start: float = Field(MOMENTUM_WARMUP_START, ge=0.0, lt=1.0, description="Muon momentum at step 0 (replaces [train] muon_momentum_warmup_start)")
    momentum_warmup_steps: int = Field(MOMENTUM_WARMUP_STEPS, ge=0, description="steps of the linear momentum warmup; 0: no warmup (replaces [train] muon_momentum_warmup_steps)")


@hookimpl
def golf_register(register: Any) -> None:
    """Declare the technique."""
    register(TechniqueInfo(
        name="muon-eq-r",
        options=MuonEqROptions,
        summary="row-normalized Muon (MuonEq-R) + decoupled weight decay + momentum 0.92->0.99 over 1500 steps",
        lineage=["#1217", "#1260", "#1285", "#1394"],
        legality="fixed-predictor",
        required_on_load=False,
        reported_delta="about -0.001 BPB (#1260/#1285 READMEs; no isolated multi-seed ablation); zero bytes, negligible compute",
    ))


@hookimpl
def golf_configure_optimizers(optimizers: Any, ctx: Any, opts: MuonEqROptions) -> Any:
    """Set MuonEq-R's options and momentum schedule on every Muon of the run's OptimizerSet."""
    muons = configure_muon_eq_r(
        optimizers,
        row_normalize=opts.row_normalize,
        weight_decay=opts.weight_decay,
        momentum=opts.momentum,
        momentum_warmup_start=opts.momentum_warmup_start,
        momentum_warmup_steps=opts.momentum_warmup_steps,
    )
    n = sum(len(g["params"]) for m in muons for g in m.param_groups)
    log = getattr(ctx, "log", None)
    if log is not None:
        log.info(
            f"muon-eq-r: matrices:{n} row_normalize:{opts.row_normalize} weight_decay:{opts.weight_decay} "
            f"momentum:{opts.momentum_warmup_start}->{opts.momentum} over {opts.momentum_warmup_steps} steps"
        )
    return optimizers
