"""Progress display for training and evaluation: a bar on a terminal, plain lines otherwise."""
from __future__ import annotations

import sys
import time
from typing import Any, Optional


class Progress:
    """A progress display over ``total`` units.

    On a TTY it draws a rich bar; elsewhere (CI, files) it prints a plain line each time
    another tenth is done. Disabled on non-main ranks.
    """

    def __init__(self, total: int, desc: str, enabled: bool = True, stream: Any = None):
        self.total = max(int(total), 1)
        self.desc = desc
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self._t0 = time.time()
        self._next_tenth = 1
        self._bar = None
        self._task = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

            self._bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), TextColumn("{task.fields[info]}"), transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(desc, total=self.total, info="")

    def update(self, n: int = 1, info: str = "") -> None:
        """Advance by ``n`` units; ``info`` is shown beside the bar."""
        if not self.enabled:
            return
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n, info=info)
            return
        if self.done * 10 >= self._next_tenth * self.total and self._next_tenth <= 10:
            el = time.time() - self._t0
            pct = min(100, 100 * self.done // self.total)
            print(f"{self.desc}: {self.done}/{self.total} ({pct}%) {el:.1f}s {info}".rstrip(),
                  file=self.stream, flush=True)
            self._next_tenth = self.done * 10 // self.total + 1

    def print(self, msg: str) -> None:
        """Print a line without breaking the bar."""
        if self._bar is not None:
            self._bar.console.print(msg, markup=False, highlight=False)
        else:
            print(msg, flush=True)

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Optional[BaseException]) -> None:
        self.close()
