"""Bits per byte and the result of one evaluation (pg_core.md §3.3).

``val_loss = loss_sum / tokens`` (nats per token) and
``val_bpb = val_loss / ln 2 * tokens / bytes``; all sums in float64.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

LN2 = math.log(2.0)


def bits_per_byte(val_loss: float, tokens: float, num_bytes: float) -> float:
    """``val_loss / ln 2 * tokens / bytes`` (NaN when there are no bytes)."""
    if num_bytes <= 0:
        return float("nan")
    return (val_loss / LN2) * (tokens / num_bytes)


@dataclass(frozen=True)
class EvalResult:
    """One evaluation: mean NLL per scored target (nats), BPB, scored targets, their bytes,
    whether every target was scored exactly once, and the float64 NLL sum."""

    val_loss: float
    val_bpb: float
    tokens: int
    bytes: int
    coverage_ok: bool
    loss_sum: float = float("nan")

    @classmethod
    def from_sums(cls, loss_sum: float, tokens: float, num_bytes: float, coverage_ok: bool) -> "EvalResult":
        """Build a result from the float64 sums."""
        val_loss = loss_sum / tokens if tokens else float("nan")
        return cls(float(val_loss), float(bits_per_byte(val_loss, tokens, num_bytes)), int(tokens),
                   int(num_bytes), bool(coverage_ok), float(loss_sum))

    def to_dict(self) -> dict:
        """JSON-able form (keys as in ``result.json``: val_loss, val_bpb, val_tokens, val_bytes, ...)."""
        d = asdict(self)
        d["val_tokens"] = d.pop("tokens")
        d["val_bytes"] = d.pop("bytes")
        return d
