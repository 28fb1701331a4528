"""Certify a score/update ledger (techniques.md §11.3): every update reads only targets that were
scored before it, and no score event uses a state that was updated on any of its own (or later)
targets.

Ledger events are dicts ``{"event": "score" | "update", "state_version": v, "targets": [lo, hi)}``
as ``golf_core.eval.EvalSession`` writes them; an update moves the state from version ``v`` to
``v + 1``.
"""
from __future__ import annotations

from typing import Iterable


def certify_ledger(ledger: Iterable[dict]) -> tuple[bool, str]:
    """``(True, "ok")`` when the ledger is score-first, else ``(False, reason)`` naming the first
    offending event (by its position in the ledger)."""
    scored: list[tuple[int, int]] = []      # merged, sorted ranges scored so far
    max_update_hi = 0                         # one past the largest target any update has read
    version = 0
    for n, ev in enumerate(ledger):
        lo, hi = int(ev["targets"][0]), int(ev["targets"][1])
        kind = ev.get("event")
        if int(ev.get("state_version", version)) != version:
            return False, f"event {n}: state_version {ev.get('state_version')} but the ledger is at version {version}"
        if kind == "score":
            if version > 0 and lo < max_update_hi:
                return False, (f"event {n}: scores targets from {lo} with state version {version}, "
                               f"which was trained on targets up to {max_update_hi - 1}")
            scored = _merge(scored, lo, hi)
        elif kind == "update":
            if not _covered(scored, lo, hi):
                return False, f"event {n}: update reads targets [{lo}, {hi}) that were not all scored before it"
            max_update_hi = max(max_update_hi, hi)
            version += 1
        else:
            return False, f"event {n}: unknown event {kind!r}"
    return True, "ok"


def _merge(ranges: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges + [(lo, hi)]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _covered(ranges: list[tuple[int, int]], lo: int, hi: int) -> bool:
    return any(a <= lo and hi <= b for a, b in ranges)
