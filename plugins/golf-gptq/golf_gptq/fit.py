"""Fit the clip multiplier ``k`` so the artifact lands just under a byte budget (techniques.md §12).

Compressed size falls monotonically with ``k`` (about ``H(q) ≈ b - log2 k + const`` bits per
weight), so ``log size`` is close to linear in ``log k``. The search brackets the budget, then
interpolates in log-log space (safeguarded bisection) until the size is within ``tol`` under
the budget. #1394 tuned ``k = 12.85`` by hand for the same purpose.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from golf_core.api import GolfError


@dataclass
class FitResult:
    """The chosen ``k``, its size, the budget and every probe ``(k, size)`` in order."""

    k: float
    size: int
    budget: int
    probes: list[tuple[float, int]] = field(default_factory=list)
    converged: bool = True

    def as_dict(self) -> dict:
        """JSON-able summary."""
        return {"k": self.k, "size": self.size, "budget": self.budget, "converged": self.converged,
                "under_by": self.budget - self.size, "under_by_frac": (self.budget - self.size) / self.budget,
                "probes": [[k, s] for k, s in self.probes]}


def fit_clip_sigmas(size_at: Callable[[float], int], budget: int, k0: float, tol: float = 0.002,
                    k_min: float = 0.5, k_max: float = 200.0, max_probes: int = 16) -> FitResult:
    """Smallest ``k`` (finest quantization) whose ``size_at(k) <= budget``, searched until the size
    is in ``[budget * (1 - tol), budget]``.

    :param size_at: bytes at clip multiplier ``k`` (decreasing in ``k``).
    :raises GolfError: when even ``k_max`` does not fit.
    :return: a :class:`FitResult`; ``converged`` is False when ``k_min`` already fits with room
        to spare (the budget cannot be filled) or the probe budget ran out.
    """
    probes: list[tuple[float, int]] = []
    lo_ok = budget * (1.0 - tol)
    target = budget * (1.0 - tol / 2)  # aim at the middle of the accepted window
    over = under = None  # (k, size): largest k still over the budget / smallest k that fits
    slope = -0.3  # d log(size) / d log(k), refined from the probes

    def probe(k: float) -> None:
        nonlocal over, under, slope
        s = int(size_at(k))
        if probes:
            k1, s1 = probes[-1]
            if k1 != k and s1 != s:
                est = (math.log(s) - math.log(s1)) / (math.log(k) - math.log(k1))
                if est < -1e-3:
                    slope = est
        probes.append((k, s))
        if s > budget:
            if over is None or k > over[0]:
                over = (k, s)
        elif under is None or k < under[0]:
            under = (k, s)

    probe(min(max(k0, k_min), k_max))
    while len(probes) < max_probes:
        if under is not None and under[1] >= lo_ok:
            break
        k_last, s_last = probes[-1]
        if over is not None and under is not None:
            (ko, so), (ku, su) = over, under
            if abs(math.log(ku) - math.log(ko)) < 1e-9:
                break
            t = (math.log(target) - math.log(so)) / (math.log(su) - math.log(so)) if so != su else 0.5
            t = min(max(t, 0.1), 0.9)  # safeguard: stay inside the bracket
            k = math.exp(math.log(ko) + t * (math.log(ku) - math.log(ko)))
        elif under is None:  # every probe is over the budget: coarser
            if k_last >= k_max:
                raise GolfError(f"cannot fit the budget of {budget} bytes: at clip multiplier k={k_max:g} "
                                f"the artifact is still {s_last} bytes")
            step = min(max(math.log(target / s_last) / slope, 0.05), 1.5)
            k = min(k_last * math.exp(step), k_max)
        else:  # every probe fits with room to spare: finer
            if k_last <= k_min:
                break
            step = max(min(math.log(target / s_last) / slope, -0.05), -1.5)
            k = max(k_last * math.exp(step), k_min)
        probe(k)
    if under is None:
        raise GolfError(f"cannot fit the budget of {budget} bytes within {max_probes} probes "
                        f"(last: k={probes[-1][0]:.4g}, {probes[-1][1]} bytes)")
    return FitResult(under[0], under[1], budget, probes, converged=under[1] >= lo_ok)
