"""The taper: Muon's decoupled weight decay times ``wd_multiplier(frac)`` at every step.

``frac`` is the training fraction the step's lr multiplier used (``elapsed / budget`` under a
wallclock cap, ``step / iterations`` without one). With ``s = clamp(start, 0, 1)`` and
``f = max(final, 0)``::

    wd_multiplier(frac) = 1                                              if frac <= s or s >= 1
                        = 1 + (f - 1) * clamp((frac - s) / (1 - s), 0, 1)  otherwise

so the decay is the group's own until ``start``, then falls linearly to ``final`` times it at
the end of training (and stays there past it). Only Muon groups are tapered; the Adam groups
keep their decay, as in #1729.
"""
from __future__ import annotations

from typing import Any

#: Where each Muon group keeps its untapered decay (read at the first tapered step, so plugins
#: that set the decay in ``golf_configure_optimizers`` may come before or after this one).
BASE_KEY = "base_weight_decay"


def wd_multiplier(frac: float, start: float = 0.70, final: float = 0.50) -> float:
    """The weight-decay multiplier at training fraction ``frac`` (see the module docstring)."""
    s = min(max(start, 0.0), 1.0)
    f = max(final, 0.0)
    if frac <= s or s >= 1.0:
        return 1.0
    progress = min(max((frac - s) / max(1.0 - s, 1e-9), 0.0), 1.0)
    return 1.0 + (f - 1.0) * progress


class MuonWDTaper:
    """A ``step_schedules`` entry: ``weight_decay = base * wd_multiplier(frac)`` on every Muon group."""

    def __init__(self, start: float = 0.70, final: float = 0.50):
        self.start, self.final = float(start), float(final)

    def __call__(self, optimizers: Any, frac: float) -> None:
        """Set the decay of every Muon group of ``optimizers`` for the coming step."""
        mul = wd_multiplier(frac, self.start, self.final)
        for muon in optimizers.muons():
            for group in muon.param_groups:
                base = group.setdefault(BASE_KEY, group.get("weight_decay", 0.0))
                group["weight_decay"] = base * mul

    def __repr__(self) -> str:
        return f"MuonWDTaper(start={self.start}, final={self.final})"
