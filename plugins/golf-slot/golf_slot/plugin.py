"""golf plugin ``slot``: SLOT at eval time (#1229 scored-position, #1176 standard). Not causal."""
from __future__ import annotations

import time
from typing import Any, Literal, Optional

from pydantic import Field

from golf_core import Options, StashKey, TechniqueInfo, hookimpl

from .evaluate import slot_evaluate
from .slot import SlotConfig

#: Seconds and settings of the eval pass, for golf_summary.
SLOT_STATS: StashKey[dict] = StashKey("slot.stats")


class SlotOptions(Options):
    """Options of ``slot`` (defaults: PR #1229)."""

    steps: int = Field(16, ge=0, description="AdamW steps per batch of windows (#1229: 16; #1313: 24)")
    lr: float = Field(0.008, gt=0, description="peak learning rate of the cosine schedule (#1229: 0.008)")
    lr_min: float = Field(0.0008, ge=0, description="final learning rate of the cosine schedule (#1229: 0.0008)")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (#1229: torch default 0.01; #1176/#1313: 1e-8)")
    beta1: float = Field(0.9, ge=0, lt=1, description="AdamW beta1")
    beta2: float = Field(0.999, ge=0, lt=1, description="AdamW beta2")
    eps: float = Field(1e-8, gt=0, description="AdamW eps (#1176/#1313: 1e-5)")
    logit_bias: bool = Field(True, description="also fit a logit bias [B,1,V] added inside the softcap (#1229)")
    per_sample: bool = Field(True, description="one delta per window [B,1,d] (#1229); false: one delta for the batch [1,1,d] (#1176)")
    mask: Literal["scored", "all"] = Field("scored", description="loss positions: 'scored' = exactly the positions it then scores (#1229); 'all' = every real position of the window (standard SLOT)")
    batch_seqs: Optional[int] = Field(None, ge=1, description="windows per batch; unset: the session's ([eval] batch_tokens // seq_len; #1229: 32)")


@hookimpl
def golf_register(register: Any) -> None:
    """Declare the technique."""
    register(TechniqueInfo(
        name="slot", options=SlotOptions,
        summary="SLOT: per-window hidden delta + logit bias fitted by 16 AdamW steps on the scored positions, then used to score them (not causal)",
        lineage=["#1172", "#1176", "#1229", "#1313"],
        legality="not-causal", required_on_load=False,
        reported_delta="#1229: 0.9300 BPB (about -0.19 vs sliding), 294 s of eval; #1176 standard shared delta: -0.016; "
                       "#1240 flip test: 100% cross-position violations",
    ))


def config_of(opts: SlotOptions) -> SlotConfig:
    """The ``SlotConfig`` of the options."""
    return SlotConfig(steps=opts.steps, lr=opts.lr, lr_min=opts.lr_min, weight_decay=opts.weight_decay,
                      beta1=opts.beta1, beta2=opts.beta2, eps=opts.eps, logit_bias=opts.logit_bias,
                      per_sample=opts.per_sample)


@hookimpl
def golf_eval_adapt(model: Any, session: Any, ctx: Any, opts: SlotOptions) -> Any:
    """Score the validation stream with SLOT."""
    t0 = time.time()
    slot_evaluate(model, session, config_of(opts), mask=opts.mask, batch_seqs=opts.batch_seqs,
                  autocast=getattr(ctx, "autocast", None))
    ctx.stash[SLOT_STATS] = {"seconds": time.time() - t0, "mask": opts.mask, "steps": opts.steps,
                             "per_sample": opts.per_sample, "logit_bias": opts.logit_bias}
    ctx.log.info(f"slot: mask:{opts.mask} steps:{opts.steps} seconds:{time.time() - t0:.2f}")
    return True


@hookimpl
def golf_summary(result: dict, ctx: Any, opts: SlotOptions) -> None:
    """Add ``result["slot"]``."""
    stats = ctx.stash.get(SLOT_STATS)
    if stats is not None:
        result["slot"] = stats
