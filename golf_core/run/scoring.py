"""Scoring the validation stream: the eval session over it and one pass of the scorer."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from ..context import RunContext


def make_session(ctx: RunContext, stride: Optional[int], *, tokens: Optional[torch.Tensor] = None,
                 session_class: Optional[type] = None, **session_kw: Any):
    """An eval session over the run's validation stream (the eval phase's own read), in the
    baseline's geometry: ``batch_tokens // (world * grad_accum)`` tokens per rank and batch.

    :param tokens: the stream to score (default: the recipe's validation stream).
    :param session_class: an ``EvalSession`` subclass (``golf check`` audits through one);
        ``session_kw`` go to its constructor.
    """
    from ..eval.session import EvalSession, eval_batch_seqs
    from ..eval.windows import WindowSchedule
    from ..train.loop import grad_accum_steps

    ev = ctx.recipe.eval
    if tokens is None:
        tokens = ctx._load_validation()
    schedule = WindowSchedule(int(tokens.numel()) - 1, ev.seq_len, stride)
    batch_seqs = eval_batch_seqs(ev.batch_tokens, ev.seq_len, ctx.world_size, grad_accum_steps(ctx.recipe.train, ctx.world_size))
    cls = session_class or EvalSession
    return cls(tokens, ctx.luts, schedule, batch_seqs=batch_seqs, device=ctx.device, rank=ctx.rank,
               world_size=ctx.world_size, token_bytes=ctx.validation_bytes(int(tokens.numel())), **session_kw)


def score(model: nn.Module, ctx: RunContext, session: Any, *, adapt: bool) -> None:
    """Score ``session`` with ``model`` in eval mode: with ``adapt`` through the exclusive
    ``golf_eval_adapt`` hook (the active adapter, else the core's fixed scorer; its wall time is
    ``session.adapt_seconds``, the loop the records time), without it with the fixed scorer
    whatever the plugins are (monitoring, the pre-quant figure)."""
    from ..eval.score import score_fixed

    import time

    was_training = model.training
    model.eval()
    try:
        if adapt:
            t0 = time.time()
            ctx.plugins.exclusive("golf_eval_adapt", model=model, session=session, ctx=ctx)
            session.adapt_seconds = time.time() - t0
        else:
            score_fixed(model=model, session=session, ctx=ctx)
    finally:
        model.train(was_training)


def evaluate(model: nn.Module, ctx: RunContext, *, stride: Optional[int], adapt: bool, progress: bool = False):
    """Score the validation stream (see :func:`score`).

    :return: ``(EvalResult, session)``.
    """
    session = make_session(ctx, stride)
    if progress:
        session.progress_desc = "eval"
    score(model, ctx, session, adapt=adapt)
    return session.result(), session
