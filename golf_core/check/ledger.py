"""Score-before-update, certified from the eval session's ledger (techniques.md §11.3).

The ledger is the list of ``{"event": "score"|"update", "state_version", "targets": [lo, hi)}``
events of one rank, in order. ``update_tokens`` for targets ``[lo, hi)`` hands out tokens
``lo..hi``, i.e. the targets up to ``hi - 1``. The core session already refuses an update whose
targets are not all scored; what it cannot see is an adapter scoring an *earlier* target after
adapting on later ones. The certificate: every update reads only targets scored before it; every score event after an
update scores only targets ``>= hi`` of that update (the frontier never moves backwards); state
versions count the updates.

An adapter that evaluates documents in a declared order (``EvalSession.declare_order``: an
``order`` event first, groups of documents) is judged in that order instead: every score after an
update lies in the update's group or a later one, and within a document only after the targets the
update read. A score event of several documents lists its contiguous ``spans``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional


@dataclass
class LedgerAudit:
    """The verdict on one or more ranks' ledgers.

    scores / updates: event counts (all ranks); problems: one line per violation (first few
    kept); ranks: ledgers audited; ok: no violation.
    """

    scores: int = 0
    updates: int = 0
    problems: list[str] = field(default_factory=list)
    ranks: int = 1

    @property
    def ok(self) -> bool:
        """True when no event breaks score-before-update."""
        return not self.problems


def audit_ledger(events: Iterable[dict[str, Any]], rank: Optional[int] = None, keep: int = 5,
                 scored_before: Optional[list[list[tuple[int, int]]]] = None, check_scored: bool = True) -> LedgerAudit:
    """Check one rank's ledger (see the module docstring).

    :param scored_before: for the k-th update, the targets scored before it on *every* rank (an
        update is a barrier: all ranks update on the same chunk); default: this rank's own.
    :param check_scored: False for one rank's ledger of a multi-rank run whose other ledgers are
        lost (``eval_ledger.jsonl`` holds rank 0's): its updates cover other ranks' scores.
    """
    out = LedgerAudit()
    where = f" on rank {rank}" if rank is not None else ""
    frontier = 0          # every later score must start at or after this target
    frontier_from: Optional[dict[str, Any]] = None
    updates_done = 0
    scored: list[tuple[int, int]] = []   # merged ranges scored so far
    order: Optional[_Order] = None
    for ev in events:
        kind = ev.get("event")
        if kind == "order":
            if order is not None or out.scores or out.updates:
                _add(out, keep, f"a document order declared after the evaluation began{where}")
            order = _Order(ev.get("groups", []))
            continue
        lo, hi = (int(x) for x in ev.get("targets", (0, 0)))
        version = ev.get("state_version")
        if order is not None and kind in ("score", "update"):
            if kind == "update":
                out.updates += 1
                known = scored_before[updates_done] if scored_before is not None and updates_done < len(scored_before) \
                    else scored
                if check_scored and not any(a <= lo and hi <= b for a, b in known):
                    _add(out, keep, f"update of targets [{lo}, {hi}){where} reads targets not all scored before it")
                problem = order.update(lo, hi)
                updates_done += 1
            else:
                out.scores += 1
                problem = None
                for a, b in ev.get("spans") or [[lo, hi]]:
                    problem = problem or order.score(int(a), int(b))
                    scored = _merge(scored, int(a), int(b))
            if problem:
                _add(out, keep, problem + where)
            continue
        if kind == "update":
            out.updates += 1
            if version is not None and int(version) != updates_done:
                _add(out, keep, f"update of targets [{lo}, {hi}) at state version {version} after {updates_done} "
                                f"update(s){where}: versions do not count the updates")
            known = scored_before[updates_done] if scored_before is not None and updates_done < len(scored_before) \
                else scored
            if check_scored and not any(a <= lo and hi <= b for a, b in known):
                _add(out, keep, f"update of targets [{lo}, {hi}){where} reads targets not all scored before it")
            updates_done += 1
            if hi > frontier:
                frontier, frontier_from = hi, ev
        elif kind == "score":
            out.scores += 1
            if version is not None and int(version) != updates_done:
                _add(out, keep, f"score of targets [{lo}, {hi}) at state version {version} after {updates_done} "
                                f"update(s){where}: versions do not count the updates")
            if lo < frontier:
                u = frontier_from["targets"] if frontier_from else [0, frontier]
                _add(out, keep, f"target {lo} scored after an update that read targets [{u[0]}, {u[1]}){where}: "
                                f"the state had seen tokens after it")
            for a, b in ev.get("spans") or [[lo, hi]]:
                scored = _merge(scored, int(a), int(b))
    return out


class _Order:
    """The declared document order: group and document of every target, and the frontiers."""

    def __init__(self, groups: list[list[list[int]]]):
        docs = [(gi, int(lo), int(hi)) for gi, g in enumerate(groups) for lo, hi in g]
        docs.sort(key=lambda d: d[1])
        self.lo = [d[1] for d in docs]
        self.hi = [d[2] for d in docs]
        self.group = [d[0] for d in docs]
        self.doc_frontier: dict[int, int] = {}
        self.group_frontier = -1

    def _doc(self, t: int) -> Optional[int]:
        import bisect

        i = bisect.bisect_right(self.lo, t) - 1
        return i if i >= 0 and t < self.hi[i] else None

    def update(self, lo: int, hi: int) -> Optional[str]:
        d = self._doc(lo)
        if d is None or hi > self.hi[d]:
            return f"update of targets [{lo}, {hi}) does not lie in one document of the declared order"
        self.doc_frontier[d] = max(self.doc_frontier.get(d, 0), hi)
        self.group_frontier = max(self.group_frontier, self.group[d])
        return None

    def score(self, lo: int, hi: int) -> Optional[str]:
        d = self._doc(lo)
        if d is None:
            return f"target {lo} lies in no document of the declared order"
        if hi > self.hi[d]:      # a span over adjacent documents: judge each part
            return self.score(lo, self.hi[d]) or self.score(self.hi[d], hi)
        if self.group[d] < self.group_frontier:
            return (f"target {lo} (document group {self.group[d]}) scored after an update in group "
                    f"{self.group_frontier}, later in the declared order")
        if lo < self.doc_frontier.get(d, 0):
            return (f"target {lo} scored after an update of its document that read targets up to "
                    f"{self.doc_frontier[d] - 1}")
        return None


def audit_ledgers(ledgers: dict[int, list[dict[str, Any]]], keep: int = 5) -> LedgerAudit:
    """Check every rank's ledger; counts and problems summed."""
    total = LedgerAudit(ranks=max(1, len(ledgers)))
    union = _scored_before_updates(ledgers) if len(ledgers) > 1 else None
    for rank, events in sorted(ledgers.items()):
        a = audit_ledger(events, rank if len(ledgers) > 1 else None, keep, union)
        total.scores += a.scores
        total.updates += a.updates
        for p in a.problems:
            _add(total, keep, p)
    return total


def _scored_before_updates(ledgers: dict[int, list[dict[str, Any]]]) -> list[list[tuple[int, int]]]:
    """For the k-th update of the ranks, the targets all ranks scored before their k-th update."""
    per_rank: list[list[list[tuple[int, int]]]] = []
    for events in ledgers.values():
        before, scored = [], []
        for ev in events:
            if ev.get("event") == "update":
                before.append(list(scored))
            elif ev.get("event") == "score":
                scored = _merge(scored, int(ev["targets"][0]), int(ev["targets"][1]))
        per_rank.append(before)
    n = max((len(b) for b in per_rank), default=0)
    out = []
    for k in range(n):
        merged: list[tuple[int, int]] = []
        for b in per_rank:
            for lo, hi in (b[k] if k < len(b) else []):
                merged = _merge(merged, lo, hi)
        out.append(merged)
    return out


def _merge(ranges: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges + [(lo, hi)]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _add(audit: LedgerAudit, keep: int, line: str) -> None:
    if len(audit.problems) < keep:
        audit.problems.append(line)
    elif len(audit.problems) == keep:
        audit.problems.append("...")
