"""File opens of data shards, recorded by an audit hook (``sys.addaudithook``, PEP 578).

``golf check`` installs the hook at the start of the run (training included) and in every
audit process before anything else runs. Every ``open`` event whose file name is a validation
or training shard of the run is recorded with the phase and plugin of the run context, and the
seconds since the recorder started. Opens made by the eval session's own stream load (and by
``ctx.read_validation``, which is declared and judged on its own) are marked ``sanctioned``; any
other open of a validation shard — ``np.fromfile`` on it in pre-quant, say — is a read of
validation data outside the eval session. Training-shard opens after training tell whether
training data was used after the training clock (GPTQ calibration) or at eval time.

A hook cannot be removed, so there is one per process; ``Recorder.start()`` points it at a new
recorder and ``stop()`` detaches it.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

_ACTIVE: Optional["Recorder"] = None
_INSTALLED = False


def _hook(event: str, args: tuple) -> None:
    rec = _ACTIVE
    if rec is None or event != "open" or not args:
        return
    path = args[0]
    if isinstance(path, int):
        return
    try:
        name = os.path.basename(os.fsdecode(path))
    except Exception:  # noqa: BLE001 - an odd path object: not a shard
        return
    rec._seen(name, os.fsdecode(path))


@dataclass
class Recorder:
    """Records opens of files named like the run's shards.

    val_names / train_names: shard file names (``fineweb_val_000000.bin``); where: a callable
    giving ``(phase, plugin)`` at the time of the open (the run context's).
    """

    val_names: frozenset = frozenset()
    train_names: frozenset = frozenset()
    where: Callable[[], tuple[str, Optional[str]]] = lambda: ("?", None)
    events: list[dict[str, Any]] = field(default_factory=list)
    t0: float = field(default_factory=time.time)
    _sanctioned: int = 0
    _busy: bool = False

    def start(self) -> "Recorder":
        """Install the process hook (once) and make this the recorder it reports to."""
        global _ACTIVE, _INSTALLED
        if not _INSTALLED:
            sys.addaudithook(_hook)
            _INSTALLED = True
        self.t0 = time.time()
        _ACTIVE = self
        return self

    def stop(self) -> None:
        """Detach this recorder."""
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None

    @contextlib.contextmanager
    def sanctioned(self) -> Iterator[None]:
        """Opens inside the block are the eval session's (or a declared read's) own."""
        self._sanctioned += 1
        try:
            yield
        finally:
            self._sanctioned -= 1

    def _seen(self, name: str, path: str) -> None:
        if self._busy:
            return
        kind = "val" if name in self.val_names else "train" if name in self.train_names else None
        if kind is None:
            return
        self._busy = True
        try:
            phase, plugin = self.where()
            if len(self.events) < 10000:
                self.events.append({"kind": kind, "file": name, "path": path, "phase": phase, "plugin": plugin,
                                    "sanctioned": self._sanctioned > 0, "t": round(time.time() - self.t0, 4)})
        finally:
            self._busy = False

    def unsanctioned_val(self) -> list[dict[str, Any]]:
        """Opens of validation shards outside the eval session's own load."""
        return [e for e in self.events if e["kind"] == "val" and not e["sanctioned"]]

    def train_opens(self, phases: tuple[str, ...]) -> list[dict[str, Any]]:
        """Opens of training shards in the given phases."""
        return [e for e in self.events if e["kind"] == "train" and e["phase"] in phases]


def active() -> Optional[Recorder]:
    """The recorder the hook reports to now, if any."""
    return _ACTIVE


@contextlib.contextmanager
def sanctioned() -> Iterator[None]:
    """``Recorder.sanctioned`` of the active recorder (a no-op without one)."""
    rec = _ACTIVE
    if rec is None:
        yield
        return
    with rec.sanctioned():
        yield
