"""golf plugin ``lora-ttt``: document-independent batched LoRA TTT (#1530), phased global SGD
(#1610, #1626) and the #1787 refinements, at eval time."""
from __future__ import annotations

import time
from typing import Any, Literal, Optional

from pydantic import Field, field_validator

from golf_core import Options, StashKey, TechniqueInfo, hookimpl

from .doc_ttt import LoRATTTConfig, lora_ttt
from .lora import TARGETS
from .phased import GlobalSGDConfig

#: (stats, seconds) of the eval pass, for golf_summary.
STATS: StashKey[dict] = StashKey("lora-ttt.stats")


class LoRATTTOptions(Options):
    """Options of ``lora-ttt`` (defaults: PR #1530; phases off)."""

    rank: int = Field(96, ge=1, description="LoRA rank (#1530: 96; #1855: 80)")
    alpha: Optional[float] = Field(None, gt=0, description="scale the LoRA output by alpha / rank; unset: 1 (#1787: 144)")
    warm_start_a: bool = Field(False, description="a reset zeroes B only, A keeps what it learned until the next phase (#1787: on)")
    targets: list[Literal["q", "k", "v", "o", "mlp", "head"]] = Field(
        default_factory=lambda: ["q", "k", "v", "o", "mlp", "head"],
        description="where adapters go: q/k/v projections, o (bypass on the attention output), mlp (bypass), head (#1530: all)")
    chunk_size: int = Field(32, ge=1, description="targets per TTT chunk of a document (#1530: 32; #1626 on: 48)")
    seq_len: Optional[int] = Field(None, ge=2, description="window: the last <= seq_len targets of the document; unset: [eval] seq_len (#1530: 2048)")
    batch_docs: int = Field(64, ge=1, description="documents per batch, each with its own adapters (#1530: 64)")
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="LoRA optimizer (#1530: AdamW)")
    lr: float = Field(1e-4, gt=0, description="LoRA learning rate (#1530: 1e-4)")
    beta1: float = Field(0.0, ge=0, lt=1, description="AdamW beta1 / SGD momentum (#1530: 0)")
    beta2: float = Field(0.999, ge=0, lt=1, description="AdamW beta2 (#1530: 0.999; #1855: 0.99)")
    eps: float = Field(1e-10, gt=0, description="AdamW eps (#1530: 1e-10)")
    weight_decay: float = Field(0.5, ge=0, description="LoRA weight decay (#1530: 0.5; #1787: 1.0; #1855: 0.5)")
    grad_steps: int = Field(1, ge=1, description="optimizer steps per chunk (#1530: 1)")
    prefix_docs: int = Field(0, ge=0, description="phased TTT: documents of the scored prefix trained on by global SGD; 0: no phase (#1610/#1626: 2000; #1855: 2500)")
    num_phases: int = Field(1, ge=1, description="phases at floor(prefix_docs k / num_phases) documents (#1610: 1; #1626: 3)")
    global_lr: float = Field(0.001, gt=0, description="global SGD peak lr, cosine over chunks (#1610: 0.005; #1626: 0.001)")
    global_momentum: float = Field(0.9, ge=0, lt=1, description="global SGD momentum (#1626: 0.9)")
    global_epochs: int = Field(1, ge=0, description="passes over each chunk of the scored prefix (#1610: 3; #1626: 1)")
    global_chunk_tokens: int = Field(32768, ge=2, description="global SGD chunk (#1626: 32768)")
    global_batch_seqs: int = Field(32, ge=1, description="global SGD sequences per micro-batch and rank (#1626: 32)")
    global_grad_clip: float = Field(1.0, ge=0, description="global SGD grad-norm clip; 0: none (#1626: 1.0)")
    global_warmup_chunks: int = Field(0, ge=0, description="linear lr warmup chunks before the cosine (#1626: 0)")
    global_respect_doc_boundaries: bool = Field(True, description="global SGD attention cut at every BOS (#1626: on)")

    @field_validator("targets")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v) or not v:
            raise ValueError(f"targets must be distinct and non-empty, got {v}")
        return v


def _tiny(opts: LoRATTTOptions, recipe: Any) -> LoRATTTOptions:
    """Under --tiny: windows of the tiny eval length, 8 documents a batch, a prefix of at most 16."""
    seq = int(recipe.eval.seq_len)
    return opts.model_copy(update={"seq_len": min(int(opts.seq_len or seq), seq), "batch_docs": min(opts.batch_docs, 8),
                                   "chunk_size": min(opts.chunk_size, max(1, seq // 4)),
                                   "prefix_docs": min(opts.prefix_docs, 16), "global_chunk_tokens": min(opts.global_chunk_tokens, 4 * seq),
                                   "global_batch_seqs": min(opts.global_batch_seqs, 4)})


@hookimpl
def golf_register(register: Any) -> None:
    """Declare the technique."""
    register(TechniqueInfo(
        name="lora-ttt", options=LoRATTTOptions,
        summary="document-independent batched LoRA TTT (score each 32-token chunk of every document, then one AdamW step on it; per-batch reset), optional phased global SGD on scored documents",
        lineage=["#1530", "#1610", "#1626", "#1667", "#1767", "#1787", "#1855"],
        legality="score-first", required_on_load=False, tiny=_tiny,
        reported_delta="#1530: ~0.003 nats; #1610 one phase -0.00056; #1626 three phases -0.00081 vs one; #1787 refinements -0.00043",
    ))


def config_of(opts: LoRATTTOptions, seq_len: int, seed: int = 1337, clip_order: str = "per-matrix") -> LoRATTTConfig:
    """The ``LoRATTTConfig`` of the options (``seq_len``: the eval's when unset; ``seed``: the
    run's, for the adapters' random draws; ``clip_order``: the global SGD's clip-norm summation,
    the training's ``[train] muon_arithmetic``, as the records clip ``base_model.parameters()``
    in both)."""
    L = int(opts.seq_len or seq_len)
    seed = int(seed)
    return LoRATTTConfig(
        rank=opts.rank, alpha=opts.alpha, warm_start_a=opts.warm_start_a,
        targets=tuple(t for t in TARGETS if t in opts.targets), chunk_size=opts.chunk_size, seq_len=L,
        batch_docs=opts.batch_docs, optimizer=opts.optimizer, lr=opts.lr, beta1=opts.beta1, beta2=opts.beta2,
        eps=opts.eps, weight_decay=opts.weight_decay, grad_steps=opts.grad_steps, seed=seed, prefix_docs=opts.prefix_docs,
        num_phases=opts.num_phases,
        global_sgd=GlobalSGDConfig(lr=opts.global_lr, momentum=opts.global_momentum, epochs=opts.global_epochs,
                                   chunk_tokens=opts.global_chunk_tokens, batch_seqs=opts.global_batch_seqs, seq_len=L,
                                   grad_clip=opts.global_grad_clip, warmup_chunks=opts.global_warmup_chunks,
                                   respect_doc_boundaries=opts.global_respect_doc_boundaries, clip_order=clip_order))


@hookimpl
def golf_eval_adapt(model: Any, session: Any, ctx: Any, opts: LoRATTTOptions) -> Any:
    """Score the validation stream document by document with LoRA TTT (and phases)."""
    t0 = time.time()
    stats = lora_ttt(model, session, config_of(opts, ctx.recipe.eval.seq_len, ctx.recipe.train.seed,
                                                ctx.recipe.train.muon_arithmetic), autocast=ctx.autocast,
                     device=ctx.device, log=ctx.log.info)
    secs = time.time() - t0
    ctx.stash[STATS] = {"stats": stats, "seconds": secs}
    for ph in stats.phases:
        ctx.log.metric(event="lora_ttt_phase", **ph)
    ctx.log.info(f"lora-ttt: documents:{stats.documents} groups:{stats.groups} forwards:{stats.forwards} "
                 f"steps:{stats.steps} phases:{len(stats.phases)} seconds:{secs:.2f}")
    return True


@hookimpl
def golf_summary(result: dict, ctx: Any, opts: LoRATTTOptions) -> None:
    """Add ``result["lora-ttt"]``: counts, phases and the TTT loop's own seconds."""
    got = ctx.stash.get(STATS)
    if got is None:
        return
    s = got["stats"]
    result["lora-ttt"] = {"documents": s.documents, "groups": s.groups, "forwards": s.forwards, "steps": s.steps,
                          "phases": s.phases, "ttt_seconds": got["seconds"]}
