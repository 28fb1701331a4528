"""The audited eval session: the run's own ``EvalSession`` with a watch list, and what it
established about normalization.

The core session computes every scored target's NLL itself from the full row the adapter hands
back (``logsumexp(z) - z[y]`` over at least the whole vocabulary), so what is scored is a
normalized distribution by construction, on every row, in every run; it refuses short rows and
records non-finite ones. It also records every legality event (a target scored twice, tokens
asked for before their targets were scored, targets read before their window was scored). The
audit session keeps, in addition, the log-softmax rows of the ``watch`` targets, which the flip
test compares; every run of one check watches the same targets, so a run cannot tell from its
session whether it is the reported run or a probe.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

from ..eval.session import EvalSession


@dataclass
class NormStats:
    """Normalization evidence of one or more sessions.

    rows_checked: scored rows whose NLL the session computed from a full row; min_cols: the
    fewest columns seen; max_abs_lse: the largest |logsumexp| of a handed-back row (0 for
    log-probabilities; informative only: the session normalizes); vocab_size: the ids a row
    must cover.
    """

    rows_checked: int = 0
    min_cols: Optional[int] = None
    max_abs_lse: float = 0.0
    vocab_size: int = 0

    def merge(self, other: "NormStats") -> "NormStats":
        """The stats of two sessions together."""
        cols = [c for c in (self.min_cols, other.min_cols) if c is not None]
        return NormStats(self.rows_checked + other.rows_checked, min(cols) if cols else None,
                         max(self.max_abs_lse, other.max_abs_lse), max(self.vocab_size, other.vocab_size))

    def as_dict(self) -> dict[str, Any]:
        """Plain data for compliance.json."""
        return {"rows_checked": self.rows_checked, "min_cols": self.min_cols, "max_abs_lse": self.max_abs_lse,
                "vocab_size": self.vocab_size}


@dataclass
class Violation:
    """A legality event the session recorded: ``scored_twice``, ``update_before_score``,
    ``read_unscored_targets``, ``short_rows``, ``non_finite``, or ``adapter_error``."""

    kind: str
    message: str


class AuditSession(EvalSession):
    """An EvalSession that keeps the log-softmax rows of ``watch`` targets (target indices)."""

    def __init__(self, *args: Any, watch: Iterable[int] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.watch = frozenset(int(t) for t in watch)

    @property
    def norm(self) -> NormStats:
        """What this session established about normalization."""
        return NormStats(self.rows_checked, self.vocab_size if self.rows_checked else None, self.max_abs_lse,
                         self.vocab_size)

    def violation_list(self) -> list[Violation]:
        """The recorded legality events as ``Violation`` objects."""
        return [Violation(k, m) for k, m in self.violations]
