"""Where the flip test flips a token (techniques.md §11.2, "probe placement matters").

Positions are token positions of the validation stream ``x[0..N]``: the target at position
``t`` is token ``x[t]`` predicted from ``x[0..t-1]`` (the session's target index ``t - 1``).
Flipping token ``j`` may move every target at ``t > j``; no target at ``t < j`` may move, and the
log-probability of the *original* token at ``t = j`` may not move either.

Probes come from the base run's own ledger, so they sit where an adapter's state changes:

* ``batch-inner``: the middle of the scored block of a window that is neither the stream's first
  nor its batch's last (its targets are context of later windows of the same batch: catches state
  shared across a batch, #1306's batch-shared delta; and earlier targets of its own window are
  scored with it: catches #1229's scored-position delta);
* ``chunk-next``: the first target after an update's chunk (an update reading one token too far);
* ``batch-last``: the last target of a batch (state fitted on the batch's scored positions, #1229);
* ``rank``: the first target of each later rank's share, and the last of the rank before;
* ``chunk-last``: the last target of an updated chunk;
* ``batch-first``: the first target of a batch (state carried over from earlier batches);
* ``random``: uniform over ``[2, N]``, seeded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import numpy as np

#: Probe kinds in the order they are taken when ``max_probes`` is small.
PRIORITY = ("batch-inner", "chunk-next", "batch-last", "rank", "chunk-last", "batch-first", "random")


@dataclass(frozen=True)
class Probe:
    """Flip token ``j``; ``kind`` says why this position (see the module docstring)."""

    j: int
    kind: str


def _middle(items: Sequence[Any]) -> Optional[Any]:
    """The item a third of the way in (never the very first when there are two or more)."""
    if not items:
        return None
    return items[min(len(items) - 1, max(1, len(items) // 3))]


def _inner_target(batch: tuple[int, int], windows: Optional[Sequence[tuple[int, int]]], stride: int) -> int:
    lo, hi = batch
    if windows:
        inside = [w for w in windows if lo <= w[0] and w[1] <= hi and w[1] > w[0]]
        cands = [w for w in inside[:-1] if w[0] > 0] or inside[:-1] or inside
        if cands:
            a, b = cands[len(cands) // 2]
            return a + max(1, (b - a) // 2) if b - a > 1 else a
    block = min(stride, hi - lo)
    return lo + max(1, block // 2)


def choose_probes(num_targets: int, score_events: Sequence[dict[str, Any]],
                  update_events: Sequence[dict[str, Any]] = (), rank_first_targets: Iterable[int] = (),
                  stride: int = 1, max_probes: int = 8, seed: int = 0,
                  windows: Optional[Sequence[tuple[int, int]]] = None) -> list[Probe]:
    """Up to ``max_probes`` distinct probes for a stream of ``num_targets`` targets.

    :param score_events: the base run's ``score`` ledger events (``targets`` = [lo, hi) of
        target indices), in order; a batch of windows scores one range.
    :param update_events: its ``update`` events.
    :param rank_first_targets: first target index of every rank's share after rank 0.
    :param stride: the eval stride (targets a window scores past the first window).
    :param windows: every window's scored targets ``(lo, hi)``, in order (the schedule's); without
        them the inner probe sits half a stride into the batch.
    """
    n = int(num_targets)
    cands: dict[str, list[int]] = {k: [] for k in PRIORITY}
    batches = [tuple(int(x) for x in ev["targets"]) for ev in score_events if ev["targets"][1] > ev["targets"][0]]
    multi = [b for b in batches if b[1] - b[0] > stride]
    mid = _middle(multi) or _middle(batches)
    if mid is not None:
        lo, hi = mid
        cands["batch-inner"].append(_inner_target(mid, windows, stride) + 1)
        cands["batch-last"].append(hi)                            # target hi - 1
        cands["batch-first"].append(lo + 1)                       # target lo
    for ev in list(update_events)[:2]:
        lo, hi = (int(x) for x in ev["targets"])
        cands["chunk-next"].append(hi + 1)                        # target hi: first after the chunk
        cands["chunk-last"].append(hi)                            # target hi - 1
    for t in rank_first_targets:
        cands["rank"] += [int(t) + 1, int(t)]
    rng = np.random.default_rng(seed)
    if n >= 2:
        cands["random"] = [int(v) for v in rng.integers(2, n + 1, size=4 * max(1, max_probes))]
    out: list[Probe] = []
    seen: set[int] = set()
    # round-robin over kinds in priority order, so a small budget still covers every kind
    rounds = max((len(v) for v in cands.values()), default=0)
    for r in range(rounds):
        for kind in PRIORITY:
            if len(out) >= max_probes:
                return out
            if r < len(cands[kind]):
                j = cands[kind][r]
                if 2 <= j <= n and j not in seen:
                    seen.add(j)
                    out.append(Probe(j, kind))
    return out
