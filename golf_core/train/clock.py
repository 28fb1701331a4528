"""The challenge's training clock (research/pg_core.md §1.2, §4.6, §9.4).

Only training segments are timed: the clock starts after the compile warmup was undone,
pauses for in-loop validation and checkpoint writes, and resumes afterwards. The usable
budget is ``max_wallclock_seconds - reserve_seconds``; a run stops after the first step at
or past it, every rank agreeing (the flag is all-reduced with MAX, see
``golf_core.train.distributed.any_rank``).
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator, Optional


class TrainClock:
    """Accumulates timed training seconds over start/pause segments.

    :param cap_s: usable budget in seconds, or None (no cap).
    :param sync: called before every reading that opens or closes a segment (e.g.
        ``torch.cuda.synchronize`` so queued GPU work is counted where it ran).
    :param time_fn: the time source (``time.perf_counter``; tests pass a fake).
    """

    def __init__(
        self,
        cap_s: Optional[float] = None,
        *,
        sync: Optional[Callable[[], Any]] = None,
        time_fn: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.cap_s = cap_s
        self._sync = sync
        self._time = time_fn
        self._acc = 0.0
        self._t0: Optional[float] = None

    @property
    def running(self) -> bool:
        """True while a timed segment is open."""
        return self._t0 is not None

    @property
    def elapsed_s(self) -> float:
        """Timed seconds so far, the open segment included (no sync: cheap, per step)."""
        if self._t0 is None:
            return self._acc
        return self._acc + (self._time() - self._t0)

    def start(self) -> None:
        """Open a timed segment (no-op when one is open)."""
        if self._t0 is None:
            if self._sync is not None:
                self._sync()
            self._t0 = self._time()

    def pause(self) -> float:
        """Close the open segment and return the timed seconds so far."""
        if self._t0 is not None:
            if self._sync is not None:
                self._sync()
            self._acc += self._time() - self._t0
            self._t0 = None
        return self._acc

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Stop the clock for the duration of a block (validation, checkpoints)."""
        was_running = self.running
        self.pause()
        try:
            yield
        finally:
            if was_running:
                self.start()

    def reached_cap(self) -> bool:
        """True when a cap is set and the timed seconds reached it (this rank's view)."""
        return self.cap_s is not None and self.elapsed_s >= self.cap_s

    def frac(self) -> Optional[float]:
        """Elapsed over the cap, or None without a cap."""
        return None if self.cap_s is None else self.elapsed_s / max(self.cap_s, 1e-9)

    def state_dict(self) -> dict[str, float]:
        """The timed seconds so far (for checkpoints)."""
        return {"elapsed_s": self.elapsed_s}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore the timed seconds; the clock is left paused."""
        self._acc = float(state["elapsed_s"])
        self._t0 = None
