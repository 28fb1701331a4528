"""Where the flip test cuts and flips (token positions ``j`` of the validation stream; the
session's target index of position ``t`` is ``t - 1``).

One audit run per *cut* ``c``: tokens at ``c`` and at many positions after it (the run's
*flips*) are changed on disk; every score at ``t < c`` must stay within tolerance, and the whole
predicted row at ``t = c`` (the distribution of token ``c``) must not move. So one run tests
every earlier score against a dense set of later changes, and every flipped position is a probe.

Cuts and flips are drawn, with a seed, from the stream's boundaries, each taken at offsets -1,
0, +1 (a leak that fires only at an edge is exercised at the edge):

* ``window``: first and last scored target of every window;
* ``batch``: first target of every batch of windows, for every batch geometry audited;
* ``chunk``: first target after, and last target of, every adaptation chunk (the run's
  ``update`` events; TTT phases are chunks too);
* ``document``: every BOS token (cuts take the token after it, the BOS itself and the end of the
  previous document in turn);
* ``rank``: the first target of each of the 8 ranks' shares of the challenge's hardware;
* ``late``: the last tenth of the stream; ``random``: uniform over the stream.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

KINDS = ("window", "batch", "chunk", "document", "rank", "late", "random")
#: The order cut kinds are taken in (round-robin, kinds without positions skipped).
ROUND = ("document", "chunk", "batch", "window", "late", "document", "rank", "random", "chunk", "window",
         "document", "batch")


@dataclass(frozen=True)
class Cut:
    """One audit run: flip ``flips`` (token positions, the first is the cut ``j``), at batch
    geometry ``geometry``; ``kind`` says why ``j``."""

    j: int
    kind: str
    geometry: str
    flips: tuple[int, ...]

    def as_dict(self) -> dict:
        """Plain data for compliance.json."""
        return {"j": self.j, "kind": self.kind, "geometry": self.geometry, "flips": len(self.flips),
                "flip_positions": list(self.flips)}


def boundaries(num_targets: int, window_lo: Sequence[int], window_hi: Sequence[int],
               batch_windows: Iterable[int] = (), updates: Sequence[Sequence[int]] = (),
               bos_positions: Sequence[int] = (), ranks: int = 8) -> dict[str, list[int]]:
    """Boundary token positions by kind (see the module docstring), each within ``[1, N]``.

    :param window_lo / window_hi: every window's scored targets ``[lo, hi)``, in order.
    :param batch_windows: windows per batch of each audited geometry.
    :param updates: the run's update ranges ``[lo, hi)`` of target indices.
    :param bos_positions: token positions of document starts.
    """
    n = int(num_targets)
    lo, hi = np.asarray(window_lo, dtype=np.int64), np.asarray(window_hi, dtype=np.int64)
    out: dict[str, list[int]] = {k: [] for k in KINDS}
    out["window"] = sorted(set((lo + 1).tolist()) | set(hi.tolist()))
    for w in batch_windows:
        out["batch"] += (lo[:: max(1, int(w))] + 1).tolist()
    for a, b in updates:
        out["chunk"] += [int(b) + 1, int(b)]
    out["document"] = [int(p) for p in bos_positions]
    if len(lo):
        share = -(-len(lo) // ranks)
        out["rank"] = [int(lo[r * share]) + 1 for r in range(1, ranks) if r * share < len(lo)]
    out["late"] = list(range(max(1, n - n // 10), n + 1))
    out["random"] = list(range(1, n + 1))
    return {k: sorted({p for p in v if 1 <= p <= n}) for k, v in out.items()}


def _with_edges(points: Iterable[int], n: int) -> list[int]:
    return sorted({q for p in points for q in (p - 1, p, p + 1) if 1 <= q <= n})


def plan_cuts(num_targets: int, bounds: Mapping[str, Sequence[int]], geometries: Sequence[str], cuts_per: Sequence[int],
              flips_per_cut: int, seed: int) -> list[Cut]:
    """The cuts of every geometry: ``cuts_per[g]`` cuts for geometry ``geometries[g]``, their kinds
    round-robin over the kinds that have positions (``ROUND``: document and chunk boundaries get
    more), each cut with up to ``flips_per_cut`` flips after it: boundary positions (with edges)
    first, then random."""
    n = int(num_targets)
    rng = np.random.default_rng(seed)
    order = [k for k in ROUND if bounds.get(k)]
    edges = {k: _with_edges(bounds[k], n) if k not in ("late", "random") else list(bounds[k]) for k in order}
    dense = sorted({p for k in order if k not in ("late", "random") for p in edges[k]})
    used: set[tuple[int, str]] = set()
    out: list[Cut] = []
    seen: dict[str, int] = {}
    for geo, count in zip(geometries, cuts_per):
        for i in range(int(count)):
            kind = order[i % len(order)] if order else "random"
            m = seen[kind] = seen.get(kind, -1) + 1
            cands = edges.get(kind) or list(range(1, n + 1))
            if kind == "document":     # the token after BOS, the BOS, the end of the document before
                off = (1, 0, -1)[m % 3]
                cands = [p + off for p in bounds[kind] if 1 <= p + off <= n] or cands
            j = int(cands[int(rng.integers(0, len(cands)))])
            for _ in range(8):
                if (j, geo) not in used:
                    break
                j = int(cands[int(rng.integers(0, len(cands)))])
            used.add((j, geo))
            after = [p for p in dense if p > j]
            k = min(len(after), max(0, flips_per_cut - 1) * 3 // 4)
            picked = set(rng.choice(after, size=k, replace=False).tolist()) if k else set()
            while len(picked) < flips_per_cut - 1 and len(picked) < n - j:
                picked.add(int(rng.integers(j + 1, n + 1)))
            out.append(Cut(j, kind, geo, tuple([j] + sorted(picked))))
    return out


def flip_tokens(stream: np.ndarray, positions: Iterable[int], vocab_size: int, seed: int,
                avoid: int = -1) -> dict[int, int]:
    """A new id, different from the stream's and from ``avoid`` (the BOS: a flip never starts a
    document), for every position (seeded)."""
    rng = np.random.default_rng(seed)
    out = {}
    for p in positions:
        old = int(stream[p])
        new = (old + 1 + int(rng.integers(0, vocab_size - 1))) % vocab_size
        while new == avoid or new == old:
            new = (new + 1) % vocab_size
        out[int(p)] = new
    return out


def without_bos(cut: Cut, stream: np.ndarray, bos: int) -> Cut:
    """The cut without flips of BOS tokens (the document structure stays as it is); the cut point
    moves to its first remaining flip."""
    keep = tuple(p for p in cut.flips if int(stream[p]) != bos) or cut.flips[:0]
    return Cut(keep[0] if keep else cut.j, cut.kind, cut.geometry, keep)


def in_order(cut: Cut, inv: np.ndarray) -> Cut:
    """A stream-position cut seen in evaluation order: target ``t`` is at evaluation position
    ``inv[t]`` (token positions are targets + 1); the cut point is the earliest flip."""
    flips = tuple(sorted(int(inv[p - 1]) + 1 for p in cut.flips))
    return Cut(flips[0] if flips else cut.j, cut.kind, cut.geometry, flips)


def order_cut(cut: Cut, perm: np.ndarray, inv: np.ndarray, stream: np.ndarray, bos: int,
              rng: np.random.Generator) -> tuple[Cut, list[int]]:
    """Re-plan a cut for an evaluation in a declared document order (``perm[e]``: the ``e``-th
    target evaluated): the cut at the evaluation position of the cut's target, with as many flips
    drawn from the later evaluation positions, none on a BOS token. Returns the cut in evaluation
    coordinates and the stream token positions to flip."""
    n = perm.shape[0]
    e0 = int(inv[cut.j - 1])
    later = np.arange(e0 + 1, n)
    k = min(len(later), max(0, len(cut.flips) - 1))
    picked = sorted(set(rng.choice(later, size=k, replace=False).tolist())) if k else []
    evals = [e for e in [e0] + picked if int(stream[int(perm[e]) + 1]) != bos]
    flips = tuple(e + 1 for e in evals)
    return Cut(flips[0] if flips else cut.j, cut.kind, cut.geometry, flips), [int(perm[e]) + 1 for e in evals]
