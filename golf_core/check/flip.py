"""The flip test (PR #1240 generalized, techniques.md §11.2) over audit runs on disk.

Each audit run scores the whole stream with the tokens of one ``Cut`` changed on disk
(``golf_core.check.probes``). Against the unflipped base run of the same batch geometry:

* every target at ``t < j`` (target index ``< j - 1``) must keep its NLL within its tolerance;
* the whole predicted row at ``t = j`` (the distribution of token ``j``: target index ``j - 1``)
  must keep every log-probability within tolerance;
* for a recipe that declares document-independent evaluation, every target of a document none
  of whose tokens up to it changed must keep its NLL, wherever it lies.

An adapter that declares a document order (``EvalSession.declare_order``) is judged in that
order: positions, cuts and "before" are evaluation positions (``permuted``), and no flip
touches or makes a BOS token, which would change the order itself.

Tolerance is per target: ``min(cap, max(floor, safety * noise_t))`` with ``noise_t`` the
difference between the reported run and its repeat at that target; the cap is absolute, so an
adapter that adds noise of its own cannot widen the tolerance over a leak (noise above the cap
is a failure to reproduce the run, judged on its own).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .probes import Cut

SAFETY = 10.0
FLOOR = 1e-6
#: The largest tolerance any target gets, nats.
CAP = 1e-4


@dataclass
class Outcome:
    """One audit run: nll (float64 per target, NaN = not scored), coverage, watched rows
    (target index -> log-softmax row), the legality error that stopped the adapter, and info."""

    nll: np.ndarray
    coverage: np.ndarray
    rows: dict[int, np.ndarray] = field(default_factory=dict)
    aborted: Optional[str] = None
    info: dict[str, Any] = field(default_factory=dict)


def permuted(o: Outcome, perm: np.ndarray, inv: np.ndarray) -> Outcome:
    """``o`` seen in evaluation order (``perm[e]``: the ``e``-th target evaluated)."""
    if o.nll.shape[0] != perm.shape[0]:
        return o
    return Outcome(o.nll[perm], o.coverage[perm], {int(inv[k]): r for k, r in o.rows.items()}, o.aborted, o.info)


def per_target_tolerance(a: np.ndarray, b: np.ndarray, safety: float = SAFETY, floor: float = FLOOR,
                         cap: float = CAP) -> np.ndarray:
    """``min(cap, max(floor, safety * |a - b|))`` per target (cap where either is NaN)."""
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    tol = np.minimum(cap, np.maximum(floor, safety * d))
    tol[~np.isfinite(d)] = cap
    return tol


@dataclass
class ProbeResult:
    """One cut compared with its base: targets checked and moved before the cut, the row at the
    cut, targets checked and moved in untouched documents (document-independent recipes)."""

    cut: Cut
    checked: int = 0
    moved: int = 0
    max_delta: float = 0.0
    worst_t: Optional[int] = None
    row_checked: bool = False
    row_delta: Optional[float] = None
    doc_checked: int = 0
    doc_moved: int = 0
    doc_worst_t: Optional[int] = None
    doc_max_delta: float = 0.0
    aborted: Optional[str] = None

    @property
    def violated(self) -> bool:
        """True when anything that must not move moved (or the run aborted)."""
        return self.moved > 0 or self.doc_moved > 0 or self.aborted is not None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for compliance.json."""
        return {**self.cut.as_dict(), "checked": self.checked, "moved": self.moved,
                "max_delta": _finite(self.max_delta), "worst_t": self.worst_t, "row_checked": self.row_checked,
                "row_delta": self.row_delta, "doc_checked": self.doc_checked, "doc_moved": self.doc_moved,
                "doc_worst_t": self.doc_worst_t, "doc_max_delta": _finite(self.doc_max_delta),
                "aborted": self.aborted, "violated": self.violated}


def _finite(x: float) -> Optional[float]:
    return float(x) if np.isfinite(x) else None


def compare(base: Outcome, variant: Outcome, cut: Cut, tol: np.ndarray,
            doc_of_target: Optional[np.ndarray] = None) -> ProbeResult:
    """Compare a cut's run with its base (see the module docstring)."""
    res = ProbeResult(cut, aborted=variant.aborted)
    k = cut.j - 1
    a, b = base.nll, variant.nll
    fa, fb = np.isfinite(a), np.isfinite(b)
    delta = np.zeros_like(a)
    both = fa & fb
    delta[both] = np.abs(a[both] - b[both])
    delta[fa != fb] = np.inf
    moved = delta > tol
    pre = slice(0, k)
    res.checked = int((fa | fb)[pre].sum())
    res.moved = int(moved[pre].sum())
    if k > 0 and res.checked:
        i = int(np.argmax(delta[pre]))
        res.max_delta, res.worst_t = float(delta[i]), i + 1
    ra, rb = base.rows.get(k), variant.rows.get(k)
    if ra is not None and rb is not None and ra.shape == rb.shape:
        res.row_checked = True
        res.row_delta = float(np.max(np.abs(ra - rb)))
        res.checked += 1
        if res.row_delta > tol[k]:
            res.moved += 1
            if res.row_delta > res.max_delta:
                res.max_delta, res.worst_t = res.row_delta, cut.j
    if doc_of_target is not None:
        free = np.ones(a.shape[0], dtype=bool)
        free[:k] = False                      # already judged above
        for p in cut.flips:
            d = doc_of_target[min(p - 1, len(doc_of_target) - 1)]
            touched = doc_of_target == d
            if p < len(doc_of_target):       # a flipped BOS joins the document it starts
                touched |= doc_of_target == doc_of_target[p]
            free &= ~(touched & (np.arange(a.shape[0]) >= p - 1))
        res.doc_checked = int(((fa | fb) & free).sum())
        res.doc_moved = int((moved & free).sum())
        if res.doc_moved:
            dd = np.where(free, delta, 0.0)
            i = int(np.argmax(dd))
            res.doc_max_delta, res.doc_worst_t = float(dd[i]), i + 1
    return res


@dataclass
class FlipReport:
    """The flip test: tolerance summary, per-cut results, seeds and geometries."""

    num_targets: int
    tolerance: dict[str, Any]
    probes: list[ProbeResult] = field(default_factory=list)
    seed: int = 0
    geometries: dict[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def violations(self) -> list[ProbeResult]:
        """The cuts where something moved that must not."""
        return [p for p in self.probes if p.violated]

    @property
    def flips(self) -> int:
        """Flipped positions over all cuts (the probes)."""
        return sum(len(p.cut.flips) for p in self.probes)

    @property
    def ok(self) -> bool:
        """True when no cut found a violation."""
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        """Plain data for compliance.json."""
        return {"num_targets": self.num_targets, "seed": self.seed, "geometries": self.geometries,
                "tolerance": self.tolerance, "cuts": [p.as_dict() for p in self.probes], "probes": self.flips,
                "checked": sum(p.checked for p in self.probes), "moved": sum(p.moved for p in self.probes),
                "doc_checked": sum(p.doc_checked for p in self.probes),
                "doc_moved": sum(p.doc_moved for p in self.probes), "note": self.note}
