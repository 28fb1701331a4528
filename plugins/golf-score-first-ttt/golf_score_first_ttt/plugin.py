"""golf plugin ``score-first-ttt``: #1413's legal chunked score-then-update TTT at eval time."""
from __future__ import annotations

import json
import time
from typing import Any, Optional

from pydantic import Field

from golf_core import Options, StashKey, TechniqueInfo, hookimpl

from .ledger import certify_ledger
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
        lineage=["#77", "#461", "#549", "#1413", "#1493"],
        legality="score-first", required_on_load=False, tiny=_tiny,
        reported_delta="#1413: -0.0021 BPB (1.08486 -> 1.08279), ~290 s of eval; #549: -0.0025 (410 s); #1493: -0.0017",
    ))


def config_of(opts: ScoreFirstTTTOptions) -> TTTConfig:
    """The ``TTTConfig`` of the options."""
    return TTTConfig(chunk_tokens=opts.chunk_tokens, lr=opts.lr, epochs=opts.epochs, momentum=opts.momentum,
                     grad_clip=opts.grad_clip, freeze_blocks=opts.freeze_blocks, batch_seqs=opts.batch_seqs,
                     seq_len=opts.seq_len, score_batch_seqs=opts.score_batch_seqs)


@hookimpl
def golf_eval_adapt(model: Any, session: Any, ctx: Any, opts: ScoreFirstTTTOptions) -> Any:
    """Score the validation stream chunk by chunk, training on each chunk after scoring it."""
    t0 = time.time()
    stats = score_first_ttt(model, session, config_of(opts), autocast=ctx.autocast, device=ctx.device, log=ctx.log.info)
    for entry in stats.log:
        ctx.log.metric(event="ttt", **entry)
    secs = time.time() - t0
    ctx.stash[STATS] = {"stats": stats, "seconds": secs, "ledger": session.ledger}
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
             "ledger_certified": ok, "ledger_check": why}
    out = getattr(ctx, "out_dir", None)
    if out is not None:
        path = out / LEDGER_FILE
        if ctx.is_main and not path.exists():
            with open(path, "w", encoding="utf-8") as f:
                for ev in ledger:
                    f.write(json.dumps(ev) + "\n")
        entry["ledger"] = LEDGER_FILE
    result["score-first-ttt"] = entry
