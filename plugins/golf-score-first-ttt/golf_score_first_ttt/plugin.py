"""golf plugin ``score-first-ttt``: #1413's legal chunked score-then-update TTT at eval time."""
from __future__ import annotations

import json
import time
from typing import Any, Literal, Optional

from pydantic import Field

from golf_core import GolfError, Options, StashKey, TechniqueInfo, hookimpl

from .ledger import certify_ledger
from .ngram_tilt import NgramMixer, StreamTilt, TiltConfig
from .ttt import TTTConfig, score_first_ttt

#: (stats, seconds, ledger) of the eval pass, for golf_summary.
STATS: StashKey[dict] = StashKey("score-first-ttt.stats")
#: The file the pipeline writes the session's ledger to (``golf_core.run``).
LEDGER_FILE = "eval_ledger.jsonl"
#: Sequences per chunk in #1413 (32768 / 2048); ``--tiny`` keeps it.
SEQS_PER_CHUNK = 16


class ScoreFirstTTTOptions(Options):
    """Options of ``score-first-ttt`` (defaults: PR #1413)."""

    chunk_tokens: int = Field(32768, ge=1, description="targets per chunk; must be a multiple of the sequence length (#1413: 32768 = 16 x 2048)")
    lr: float = Field(0.005, gt=0, description="SGD peak learning rate, cosine over chunks to 0 (#1413: 0.005; #549: 0.002)")
    epochs: int = Field(3, ge=0, description="passes over each scored chunk (#1413: 3)")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum, state kept across chunks (#1413: 0.9)")
    grad_clip: float = Field(1.0, ge=0, description="global grad-norm clip per step; 0: none (#1413: 1.0)")
    freeze_blocks: int = Field(0, ge=0, description="blocks[0:N] are not trained (#1413: 0; #461: 2)")
    batch_seqs: int = Field(32, ge=1, description="training sequences per micro-batch and rank (#1413: 32)")
    seq_len: Optional[int] = Field(None, ge=2, description="training sequence length; unset: [eval] seq_len (#1413: 2048)")
    score_batch_seqs: Optional[int] = Field(None, ge=1, description="windows per scoring batch; unset: the session's")
    optimizer: Literal["sgd", "adamw"] = Field("sgd", description="TTT optimizer (#1529 TTT_OPTIMIZER: sgd as run; adamw possible)")
    adamw_wd: float = Field(0.0, ge=0, description="AdamW weight decay when optimizer = adamw (#1529 TTT_ADAMW_WD: 0)")
    hash_embed_size: int = Field(0, ge=0, description="TTT-only bigram hash embedding rows, zero-initialised at eval time, 0: off (#1529: 16384)")
    ngram_tilt: bool = Field(False, description="tilt every scored row toward the causal n-gram mixer's hint (#1514: on)")
    ngram_base_beta: float = Field(2.0, ge=0, description="token-expert tilt strength per unit of confidence (#1514 NGRAM_BASE_BETA: 2)")
    ngram_agree_bonus: float = Field(0.1, ge=0, description="beta added to a hint another expert agrees with (#1514: 0.1)")
    ngram_within_threshold: float = Field(0.25, ge=0, le=1, description="within-word expert confidence threshold (#1514: 0.25)")
    ngram_within_beta: float = Field(0.0, ge=0, description="within-word expert beta (#1514 as run: 0)")
    ngram_word_threshold: float = Field(0.80, ge=0, le=1, description="word expert confidence threshold (#1514: 0.8)")
    ngram_word_beta: float = Field(0.0, ge=0, description="word expert beta (#1514 as run: 0)")
    ngram_order_stride: int = Field(2, ge=1, description="token-expert orders 8..16 in steps of this (#1514 NGRAM_ORDER_STRIDE: 2)")


def _tiny(opts: ScoreFirstTTTOptions, recipe: Any) -> ScoreFirstTTTOptions:
    """Under --tiny: at most 16 sequences of the tiny length per chunk, so the short stream has several chunks."""
    seq = int(opts.seq_len or recipe.eval.seq_len)
    chunk = min(opts.chunk_tokens, SEQS_PER_CHUNK * seq)
    return opts.model_copy(update={"chunk_tokens": max(seq, chunk - chunk % seq)})


@hookimpl
def golf_register(register: Any) -> None:
    """Declare the technique."""
    register(TechniqueInfo(
        name="score-first-ttt", options=ScoreFirstTTTOptions,
        summary="score-first chunked TTT: score each 32K-token chunk, then SGD (momentum 0.9, cosine over chunks) on it; ledger of every score/update",
        lineage=["#77", "#461", "#549", "#1413", "#1477", "#1493", "#1514", "#1529"],
        legality="score-first", required_on_load=False, tiny=_tiny,
        reported_delta="#1413: -0.0021 BPB (1.08486 -> 1.08279), ~290 s of eval; #549: -0.0025 (410 s); #1493: -0.0017",
    ))


def config_of(opts: ScoreFirstTTTOptions) -> TTTConfig:
    """The ``TTTConfig`` of the options."""
    return TTTConfig(chunk_tokens=opts.chunk_tokens, lr=opts.lr, epochs=opts.epochs, momentum=opts.momentum,
                     grad_clip=opts.grad_clip, freeze_blocks=opts.freeze_blocks, batch_seqs=opts.batch_seqs,
                     seq_len=opts.seq_len, score_batch_seqs=opts.score_batch_seqs, optimizer=opts.optimizer,
                     adamw_wd=opts.adamw_wd, hash_embed_size=opts.hash_embed_size)


def tilt_of(opts: ScoreFirstTTTOptions, ctx: Any, session: Any = None) -> Optional[StreamTilt]:
    """The n-gram tilt of the options over ``ctx.luts`` (None when off); on several ranks it reads
    the prefix between its shares from ``session`` (``StreamTilt``)."""
    if not opts.ngram_tilt:
        return None
    cfg = TiltConfig(base_beta=opts.ngram_base_beta, agree_bonus=opts.ngram_agree_bonus,
                     within_threshold=opts.ngram_within_threshold, within_beta=opts.ngram_within_beta,
                     word_threshold=opts.ngram_word_threshold, word_beta=opts.ngram_word_beta,
                     order_stride=opts.ngram_order_stride)
    return StreamTilt(NgramMixer(ctx.luts.has_leading_space, ctx.luts.is_boundary, cfg), session)


@hookimpl
def golf_eval_adapt(model: Any, session: Any, ctx: Any, opts: ScoreFirstTTTOptions) -> Any:
    """Score the validation stream chunk by chunk, training on each chunk after scoring it."""
    t0 = time.time()
    tilt = tilt_of(opts, ctx, session)
    stats = score_first_ttt(model, session, config_of(opts), autocast=ctx.autocast, device=ctx.device, log=ctx.log.info,
                            tilt=tilt)
    for entry in stats.log:
        ctx.log.metric(event="ttt", **entry)
    secs = time.time() - t0
    ctx.stash[STATS] = {"stats": stats, "seconds": secs, "ledger": session.ledger,
                        "ngram_hinted": None if tilt is None else tilt.hinted}
    ctx.log.info(f"score-first-ttt: chunks:{stats.chunks} updates:{stats.updates} steps:{stats.steps} seconds:{secs:.2f}")
    return True


@hookimpl
def golf_summary(result: dict, ctx: Any, opts: ScoreFirstTTTOptions) -> None:
    """Add ``result["score-first-ttt"]``: counts, seconds, and the ledger's score-first certificate;
    write the ledger to the run folder when the pipeline has not."""
    got = ctx.stash.get(STATS)
    if got is None:
        return
    stats, ledger = got["stats"], got["ledger"]
    ok, why = certify_ledger(ledger)
    entry = {"chunks": stats.chunks, "updates": stats.updates, "steps": stats.steps, "seconds": got["seconds"],
             "trained_params": stats.trained_params, "chunk_tokens": opts.chunk_tokens,
             "ledger_certified": ok, "ledger_check": why, "ngram_hinted": got.get("ngram_hinted")}
    out = getattr(ctx, "out_dir", None)
    if out is not None:
        path = out / LEDGER_FILE
        if ctx.is_main and not path.exists():
            with open(path, "w", encoding="utf-8") as f:
                for ev in ledger:
                    f.write(json.dumps(ev) + "\n")
        entry["ledger"] = LEDGER_FILE
    result["score-first-ttt"] = entry
