"""The core's default scorer: the fixed model over every window (non-overlapping or sliding)."""
from __future__ import annotations

import contextlib
from typing import Any, Optional

import torch
import torch.nn.functional as F

from golf_core.eval.bpb import EvalResult
from golf_core.eval.session import EvalSession, WindowBatch


def window_logits(model: torch.nn.Module, batch: WindowBatch) -> torch.Tensor:
    """The logit rows ``[n_scored, V]`` of the batch's scored positions, in ``score_mask`` order
    (what ``session.score`` takes).

    Uses ``forward_hidden`` + ``compute_logits`` on the scored positions only when the model has
    both (sliding windows score a few positions of each window), else ``forward_logits``.
    Half-precision logits are upcast to float32, as the records do; float64 stays float64.
    """
    mask = batch.score_mask
    if hasattr(model, "forward_hidden") and hasattr(model, "compute_logits"):
        hidden = model.forward_hidden(batch.x)
        logits = model.compute_logits(hidden[mask])
    else:
        logits = model.forward_logits(batch.x)[mask]
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return logits


def window_nll(model: torch.nn.Module, batch: WindowBatch) -> torch.Tensor:
    """Per-token NLL (nats) of the batch's scored positions, in ``score_mask`` order, for a batch
    already scored (or outside a session): cross-entropy of ``window_logits``."""
    return F.cross_entropy(window_logits(model, batch), batch.y[batch.score_mask], reduction="none")


def score_fixed(model: torch.nn.Module, session: EvalSession, ctx: Any = None, *,
                batch_seqs: Optional[int] = None) -> EvalResult:
    """Score every window of ``session`` (this rank's share) with ``model`` under
    ``torch.inference_mode()`` and ``ctx.autocast()`` (when a context is given), then return the
    all-reduced ``EvalResult``. The model's train/eval mode is restored afterwards."""
    autocast = ctx.autocast() if ctx is not None and hasattr(ctx, "autocast") else contextlib.nullcontext()
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast:
            for batch in session.windows(batch_seqs):
                session.score(batch, window_logits(model, batch))
    finally:
        model.train(was_training)
    return session.result()
