"""golf plugin ``causal-slot``: context-only SLOT with one delta per window (AdamW hidden delta or
per-window L-BFGS logit delta); ``share_delta = true`` reproduces #1306/#1350 and is not causal."""
from __future__ import annotations

import time
from typing import Any, Literal, Optional

from pydantic import Field

from golf_core import Options, StashKey, TechniqueInfo, hookimpl

from .adamw import AdamWDeltaConfig
from .evaluate import CausalSlotConfig, causal_slot_evaluate
from .lbfgs import LBFGSConfig

STATS: StashKey[dict] = StashKey("causal-slot.stats")


class CausalSlotOptions(Options):
    """Options of ``causal-slot`` (defaults: #1306's AdamW settings, fitted per window)."""

    optimizer: Literal["adamw", "lbfgs"] = Field("adamw", description="'adamw': hidden-space delta [B,1,d] (#1306); 'lbfgs': logit-space delta [B,V] by L-BFGS run per window (#1350)")
    share_delta: bool = Field(False, description="one delta for the whole batch, as #1306/#1350 published it (NOT causal: the run is marked not-causal)")
    context_tokens: Optional[int] = Field(None, ge=1, description="fit on the last N context positions only; unset: all of them (#1306); #1350: 64 (positions [T-128, T-64))")
    steps: int = Field(8, ge=0, description="adamw: steps per batch (#1306: 8; #1333: 16)")
    lr: float = Field(0.005, gt=0, description="adamw: constant learning rate (#1306: 0.005; #1333: 0.008)")
    beta1: float = Field(0.3, ge=0, lt=1, description="adamw: beta1 (#1306: 0.3)")
    beta2: float = Field(0.9, ge=0, lt=1, description="adamw: beta2 (#1306: 0.9)")
    eps: float = Field(1e-5, gt=0, description="adamw: eps (#1306: 1e-5)")
    weight_decay: float = Field(1e-8, ge=0, description="adamw: weight decay, elementwise (#1306: 1e-8)")
    lbfgs_max_iter: int = Field(25, ge=0, description="lbfgs: iterations per window (#1350: 25)")
    lbfgs_history: int = Field(20, ge=1, description="lbfgs: history size (#1350: 20)")
    lbfgs_lr: float = Field(1.0, gt=0, description="lbfgs: step length before the strong-Wolfe line search (#1350: 1)")
    lbfgs_tolerance_change: float = Field(1e-9, ge=0, description="lbfgs: tolerance_change (#1350: 1e-9)")
    lbfgs_tolerance_grad: float = Field(1e-7, ge=0, description="lbfgs: tolerance_grad (#1350: 1e-7)")
    lbfgs_l2: float = Field(0.0, ge=0, description="lbfgs: L2 penalty l2/2*|delta|^2 on each window's logit delta (not in #1350; 0.01 turns the per-window fit from overfitting into a gain on the demo model)")
    clamp: Optional[float] = Field(5.0, gt=0, description="lbfgs: clamp the logit delta to [-clamp, clamp] (#1350: 5); unset: no clamp")
    warm_start: bool = Field(True, description="lbfgs: start each window (or batch, when shared) from the previous one's delta (#1350 warm-starts)")
    batch_seqs: Optional[int] = Field(None, ge=1, description="windows per batch; unset: the session's ([eval] batch_tokens // seq_len; #1306: 32)")


def _legality(opts: CausalSlotOptions) -> str:
    return "not-causal" if opts.share_delta else "score-first"


@hookimpl
def golf_register(register: Any) -> None:
    """Declare the technique."""
    register(TechniqueInfo(
        name="causal-slot", options=CausalSlotOptions,
        summary="context-only SLOT, one delta per window fitted on the window's already-scored context (AdamW hidden delta or per-window L-BFGS logit delta)",
        lineage=["#1176", "#1217", "#1306", "#1333", "#1350"],
        legality="score-first", legality_of=_legality, required_on_load=False,
        reported_delta="batch-shared (leaky) versions: #1306 -0.0083 (302 s), #1333 -0.013, #1350 L-BFGS -0.088 (556 s); "
                       "a per-window version should gain less (techniques.md §6.4)",
    ))


def config_of(opts: CausalSlotOptions) -> CausalSlotConfig:
    """The ``CausalSlotConfig`` of the options."""
    return CausalSlotConfig(
        optimizer=opts.optimizer, shared=opts.share_delta, context_tokens=opts.context_tokens, warm_start=opts.warm_start,
        adamw=AdamWDeltaConfig(steps=opts.steps, lr=opts.lr, beta1=opts.beta1, beta2=opts.beta2, eps=opts.eps,
                               weight_decay=opts.weight_decay),
        lbfgs=LBFGSConfig(max_iter=opts.lbfgs_max_iter, history_size=opts.lbfgs_history, lr=opts.lbfgs_lr,
                          tolerance_change=opts.lbfgs_tolerance_change, tolerance_grad=opts.lbfgs_tolerance_grad,
                          clamp=opts.clamp, l2=opts.lbfgs_l2))


@hookimpl
def golf_eval_adapt(model: Any, session: Any, ctx: Any, opts: CausalSlotOptions) -> Any:
    """Score the validation stream with causal SLOT."""
    t0 = time.time()
    causal_slot_evaluate(model, session, config_of(opts), batch_seqs=opts.batch_seqs,
                         autocast=getattr(ctx, "autocast", None))
    secs = time.time() - t0
    ctx.stash[STATS] = {"seconds": secs, "optimizer": opts.optimizer, "state": "batch" if opts.share_delta else "window",
                        "causal": not opts.share_delta}
    ctx.log.info(f"causal-slot: optimizer:{opts.optimizer} state:{'batch' if opts.share_delta else 'window'} seconds:{secs:.2f}")
    return True


@hookimpl
def golf_summary(result: dict, ctx: Any, opts: CausalSlotOptions) -> None:
    """Add ``result["causal-slot"]`` (seconds, optimizer, state granularity)."""
    stats = ctx.stash.get(STATS)
    if stats is not None:
        result["causal-slot"] = stats
