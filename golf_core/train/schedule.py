"""Learning-rate multiplier and Muon momentum warmup (research/pg_core.md §4.5, §5.4).

There is no lr warmup in either record; ``[train] warmup_steps`` are compile-warmup steps.

Baseline (``warmdown_frac`` unset):

* with a wallclock cap ``C`` (seconds, reserve already taken off): ``step_s = elapsed/max(step,1)``,
  ``warmdown_s = warmdown_iters * step_s``, ``remaining = max(C - elapsed, 0)``;
  ``lr_mul = remaining / warmdown_s`` when ``remaining <= warmdown_s`` else 1;
* without a cap: linear decay over the last ``warmdown_iters`` of ``iterations``:
  ``(iterations - step) / warmdown_iters`` for ``iterations - warmdown_iters <= step < iterations``.

PR #1394 (``warmdown_frac`` set): ``frac = elapsed / C`` (``step / iterations`` without a cap);
``lr_mul = max((1 - frac) / warmdown_frac, min_lr)`` when ``frac >= 1 - warmdown_frac`` else 1.
``min_lr`` also floors the baseline form during its warmdown (0 by default: no change; PR #1787
runs 0.10 with ``warmdown_frac`` 0.75: the floor from ``frac = 0.925`` on).

``step`` is the number of steps already done (0 for the first step), as in the records.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..config import TrainSection
from ..errors import RecipeError


def budget_seconds(train: TrainSection) -> Optional[float]:
    """Usable training seconds: ``max_wallclock_seconds - reserve_seconds``; None without a cap."""
    if train.max_wallclock_seconds <= 0:
        return None
    cap = train.max_wallclock_seconds - train.reserve_seconds
    if cap <= 0:
        raise RecipeError(
            f"[train] reserve_seconds ({train.reserve_seconds}) leaves no training time under "
            f"max_wallclock_seconds ({train.max_wallclock_seconds})"
        )
    return cap


@dataclass(frozen=True)
class LRSchedule:
    """The lr multiplier of one run; call it with ``(step, elapsed_s)``.

    :param iterations: step budget (used when there is no cap).
    :param warmdown_iters: baseline warmdown length in steps.
    :param warmdown_frac: #1394 form when set: decay over the last fraction of the budget.
    :param min_lr: floor of the multiplier during the warmdown.
    :param cap_s: usable wallclock seconds, or None for step-based schedules.
    """

    iterations: int
    warmdown_iters: int = 1200
    warmdown_frac: Optional[float] = None
    min_lr: float = 0.0
    cap_s: Optional[float] = None

    @classmethod
    def from_section(cls, train: TrainSection) -> "LRSchedule":
        """The schedule a ``[train]`` table describes."""
        return cls(
            iterations=train.iterations,
            warmdown_iters=train.warmdown_iters,
            warmdown_frac=train.warmdown_frac,
            min_lr=train.min_lr,
            cap_s=budget_seconds(train),
        )

    def frac(self, step: int, elapsed_s: float) -> float:
        """Training progress: ``elapsed / cap``, or ``step / iterations`` without a cap."""
        if self.cap_s is None:
            return step / max(self.iterations, 1)
        return elapsed_s / max(self.cap_s, 1e-9)

    def __call__(self, step: int, elapsed_s: float) -> float:
        """The lr multiplier before step ``step + 1`` after ``elapsed_s`` timed seconds."""
        if self.warmdown_frac is not None:
            if self.warmdown_frac <= 0:
                return 1.0
            frac = self.frac(step, elapsed_s)
            if frac >= 1.0 - self.warmdown_frac:
                return max((1.0 - frac) / self.warmdown_frac, self.min_lr)
            return 1.0
        if self.warmdown_iters <= 0:
            return 1.0
        if self.cap_s is None:
            start = max(self.iterations - self.warmdown_iters, 0)
            if start <= step < self.iterations:
                return max((self.iterations - step) / max(self.warmdown_iters, 1), self.min_lr)
            return 1.0
        step_s = elapsed_s / max(step, 1)
        warmdown_s = self.warmdown_iters * step_s
        remaining = max(self.cap_s - elapsed_s, 0.0)
        if remaining <= warmdown_s:
            return max(remaining / max(warmdown_s, 1e-12), self.min_lr)
        return 1.0


def lr_mul(step: int, elapsed_s: float, train: TrainSection) -> float:
    """Shorthand for ``LRSchedule.from_section(train)(step, elapsed_s)``."""
    return LRSchedule.from_section(train)(step, elapsed_s)


@dataclass(frozen=True)
class MomentumWarmup:
    """Muon momentum ``(1-f)*start + f*end`` with ``f = min(step/steps, 1)`` (1 when steps is 0)."""

    start: float = 0.85
    end: float = 0.95
    steps: int = 500

    @classmethod
    def from_section(cls, train: TrainSection) -> "MomentumWarmup":
        """The warmup a ``[train]`` table describes."""
        return cls(train.muon_momentum_warmup_start, train.muon_momentum, train.muon_momentum_warmup_steps)

    def __call__(self, step: int) -> float:
        """The momentum for the step after ``step`` completed steps."""
        f = min(step / self.steps, 1.0) if self.steps > 0 else 1.0
        return (1.0 - f) * self.start + f * self.end


def describe(schedule: LRSchedule) -> dict[str, Any]:
    """Plain data about a schedule, for logs."""
    form = "warmdown_frac" if schedule.warmdown_frac is not None else "warmdown_iters"
    return {"form": form, "clock": "wallclock" if schedule.cap_s is not None else "steps", **schedule.__dict__}
