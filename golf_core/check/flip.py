"""The flip test (PR #1240 generalized, techniques.md §11.2) over any black box ``E``.

``E(stream, watch) -> Outcome`` runs a post-training pipeline on a validation stream and returns
the NLL of every target (NaN where unscored) plus, for the ``watch`` target indices where it can,
the full log-softmax row. The test:

1. ``base = E(x)`` and ``base2 = E(x)``: the noise floor ``eps = max |base - base2|``; the
   tolerance is ``max(safety * eps, floor)`` (safety 10, floor 1e-6).
2. For every probe ``j``: ``x' = x`` with token ``j`` changed to another valid id; ``out = E(x')``.
   A violation is any target at position ``t < j`` whose NLL moved by more than the tolerance,
   or the original token's log-probability at ``t = j`` (when both runs have that row).

Positions are token positions (``golf_core.check.probes``); the session's target index is
``t - 1``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
import torch

from .probes import Probe

SAFETY = 10.0
FLOOR = 1e-6


@dataclass
class Outcome:
    """What one run of the black box gives back.

    nll: float64 per target index (NaN = not scored); coverage: times each target was scored;
    rows: target index -> log-softmax row (only watched rows the run could read); aborted: the
    legality error that stopped the adapter, if any; info: anything else the driver keeps
    (ledger, reads, byte counts, timings).
    """

    nll: np.ndarray
    coverage: np.ndarray
    rows: dict[int, np.ndarray] = field(default_factory=dict)
    aborted: Optional[str] = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProbeResult:
    """The comparison for one probe.

    checked: targets at t < j compared; moved: how many moved beyond the tolerance; max_delta
    and worst_t: the largest move and its position; row_checked / row_delta: the t = j
    comparison of the original token's log-probability (when both rows exist); aborted: the
    variant's legality error, if any.
    """

    probe: Probe
    old_token: int
    new_token: int
    checked: int = 0
    moved: int = 0
    max_delta: float = 0.0
    worst_t: Optional[int] = None
    row_checked: bool = False
    row_delta: Optional[float] = None
    aborted: Optional[str] = None

    @property
    def violated(self) -> bool:
        """True when anything at t <= j moved beyond the tolerance (or the variant aborted)."""
        return self.moved > 0 or self.aborted is not None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for compliance.json."""
        return {"j": self.probe.j, "kind": self.probe.kind, "old_token": self.old_token, "new_token": self.new_token,
                "checked": self.checked, "moved": self.moved, "max_delta": _finite(self.max_delta),
                "worst_t": self.worst_t, "row_checked": self.row_checked, "row_delta": self.row_delta,
                "aborted": self.aborted, "violated": self.violated}


@dataclass
class FlipReport:
    """The flip test's result: noise, tolerance, and one ProbeResult per probe."""

    num_targets: int
    noise: float
    tolerance: float
    probes: list[ProbeResult] = field(default_factory=list)
    note: str = ""

    @property
    def violations(self) -> list[ProbeResult]:
        """The probes that moved something at t <= j."""
        return [p for p in self.probes if p.violated]

    @property
    def ok(self) -> bool:
        """True when no probe found a violation."""
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        """Plain data for compliance.json."""
        return {"num_targets": self.num_targets, "noise": _finite(self.noise), "tolerance": _finite(self.tolerance),
                "probes": [p.as_dict() for p in self.probes], "note": self.note,
                "checked": sum(p.checked for p in self.probes), "moved": sum(p.moved for p in self.probes)}


def _finite(x: float) -> Optional[float]:
    return float(x) if np.isfinite(x) else None


def noise_floor(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| over targets both runs scored; inf when they scored different targets."""
    fa, fb = np.isfinite(a), np.isfinite(b)
    if not np.array_equal(fa, fb):
        return float("inf")
    if not fa.any():
        return 0.0
    return float(np.max(np.abs(a[fa] - b[fa])))


def tolerance(noise: float, safety: float = SAFETY, floor: float = FLOOR) -> float:
    """``max(safety * noise, floor)``."""
    return max(safety * noise, floor) if np.isfinite(noise) else float("inf")


def flipped(stream: torch.Tensor, j: int, vocab_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, int, int]:
    """``stream`` with token ``j`` replaced by a different id in ``[0, vocab_size)``."""
    out = stream.clone()
    old = int(out[j])
    new = (old + 1 + int(rng.integers(0, vocab_size - 1))) % vocab_size
    out[j] = new
    return out, old, new


def compare(base: Outcome, variant: Outcome, probe: Probe, old: int, new: int, tol: float) -> ProbeResult:
    """Compare a flipped run with the base: targets at t < j (indices < j - 1) by NLL, and the
    original token's log-probability at t = j (index j - 1) when both runs kept that row."""
    res = ProbeResult(probe, old, new, aborted=variant.aborted)
    k = probe.j - 1                     # target indices [0, k) are the positions t < j
    a, b = base.nll[:k], variant.nll[:k]
    fa, fb = np.isfinite(a), np.isfinite(b)
    both = fa & fb
    delta = np.zeros(k, dtype=np.float64)
    delta[both] = np.abs(a[both] - b[both])
    delta[fa != fb] = np.inf            # scored in one run only
    res.checked = int((fa | fb).sum())
    moved = delta > tol
    res.moved = int(moved.sum())
    if k and res.checked:
        i = int(np.argmax(delta))
        res.max_delta, res.worst_t = float(delta[i]), i + 1
    ra, rb = base.rows.get(k), variant.rows.get(k)
    if ra is not None and rb is not None:
        res.row_checked = True
        res.row_delta = float(abs(ra[old] - rb[old]))
        res.checked += 1
        if res.row_delta > tol:
            res.moved += 1
            if res.row_delta > res.max_delta:
                res.max_delta, res.worst_t = res.row_delta, probe.j
    return res


def run_flip(run: Callable[[torch.Tensor, Sequence[int]], Outcome], stream: torch.Tensor, probes: Iterable[Probe],
             vocab_size: int, *, base: Outcome, base2: Outcome, seed: int = 0, safety: float = SAFETY,
             floor: float = FLOOR, progress: Optional[Callable[[str], None]] = None) -> FlipReport:
    """Run every probe through ``run(stream, watch)`` and compare with ``base2`` (the repeat run,
    which kept the watched rows); the tolerance comes from ``base`` vs ``base2``."""
    noise = noise_floor(base.nll, base2.nll)
    tol = tolerance(noise, safety, floor)
    rep = FlipReport(num_targets=int(stream.numel()) - 1, noise=noise, tolerance=tol)
    if not np.isfinite(noise):
        rep.note = "the two identical runs scored different targets"
    rng = np.random.default_rng(seed)
    for p in probes:
        x, old, new = flipped(stream, p.j, vocab_size, rng)
        out = run(x, [p.j - 1])
        r = compare(base2, out, p, old, new, tol)
        rep.probes.append(r)
        if progress is not None:
            progress(f"check: flip j={p.j} ({p.kind}) moved:{r.moved}/{r.checked} max:{r.max_delta:.3g}")
    return rep
