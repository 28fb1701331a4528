"""Scoring: window schedules (non-overlapping and sliding), the documents of the stream and
orders over them, the evaluation session that adaptation plugins work through, the default
fixed-model scorer, and BPB."""
from __future__ import annotations

from golf_core.eval.bpb import LN2, EvalResult, bits_per_byte
from golf_core.eval.documents import Document, find_documents, length_batches, length_order, order_ranks
from golf_core.eval.score import score_fixed, window_logits, window_nll
from golf_core.eval.session import Chunk, EvalSession, WindowBatch, eval_batch_seqs
from golf_core.eval.windows import Window, WindowSchedule

__all__ = [
    "Document", "find_documents", "length_batches", "length_order", "order_ranks",
    "LN2", "EvalResult", "bits_per_byte", "score_fixed", "window_logits", "window_nll", "Chunk", "EvalSession",
    "WindowBatch", "eval_batch_seqs", "Window", "WindowSchedule",
]
