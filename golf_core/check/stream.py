"""StreamContext: a RunContext whose validation stream is a given tensor (the flip test's).

The flip test must reach every consumer of validation tokens: the eval session, and any plugin
that reads them earlier through ``ctx.read_validation`` (pre-quant TTT on val, GPTQ calibrated
on val). Both go through ``RunContext._load_validation``, which this subclass overrides. It also
records every load that did not come through ``read_validation`` (a plugin calling the private
loader would otherwise read validation data unrecorded) and which plugin each read came from.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

import torch

from ..context import RunContext
from ..rundir import RunLog
from ..stash import Stash


@dataclass
class StreamContext(RunContext):
    """A RunContext whose validation stream is ``stream`` (None: the recipe's own stream).

    Every entry of ``validation_reads`` gets a ``"plugin"`` key (``current_plugin``, which the
    plugin manager sets around every hook call); ``unrecorded_loads`` lists loads of the stream
    that bypassed ``read_validation`` (phase, plugin).
    """

    stream: Optional[torch.Tensor] = None
    unrecorded_loads: list[dict[str, Any]] = field(default_factory=list)
    _reading: bool = False

    @classmethod
    def derive(cls, ctx: RunContext, stream: Optional[torch.Tensor], *, stash: Optional[Stash] = None,
               log: Optional[RunLog] = None, keep_out_dir: bool = False) -> "StreamContext":
        """A context sharing ``ctx``'s recipe, plugins, device, ranks and data, with its own stream,
        stash (default: empty), log (default: silent) and an empty validation-read ledger; no
        output folder unless ``keep_out_dir`` (plugins' reports stay the run's own)."""
        kw = {f.name: getattr(ctx, f.name) for f in fields(RunContext) if f.init}
        kw.update(stash=stash if stash is not None else Stash(), validation_reads=[], phase="setup",
                  log=log if log is not None else RunLog(None, is_main=ctx.is_main, echo=False),
                  out_dir=ctx.out_dir if keep_out_dir else None)
        return cls(**kw, stream=None if stream is None else stream.reshape(-1).to("cpu", torch.int64))

    def eval_stream(self) -> torch.Tensor:
        """The stream the eval session scores (not recorded as a read)."""
        if self.stream is not None:
            return self.stream.clone()
        return super()._load_validation()

    def read_validation(self, reason: str) -> torch.Tensor:
        """As ``RunContext.read_validation`` (recorded), returning this context's stream; the
        record also names the plugin whose hook made the read."""
        from .opens import sanctioned

        self._reading = True
        try:
            with sanctioned():   # a declared read: judged from validation_reads
                tokens = super().read_validation(reason)
        finally:
            self._reading = False
        self.validation_reads[-1]["plugin"] = self.current_plugin or "?"
        return tokens

    def _load_validation(self) -> torch.Tensor:
        if not self._reading:
            self.unrecorded_loads.append({"phase": self.phase, "plugin": self.current_plugin or "?"})
        return self.eval_stream()


def copy_stash(stash: Stash) -> Stash:
    """A copy of a stash whose values are deep copies (a value that cannot be deep-copied, a
    loader holding a file handle say, is shared)."""
    import copy

    out = Stash()
    for key, value in stash.items():
        try:
            out[key] = copy.deepcopy(value)
        except Exception:  # noqa: BLE001 - best effort: share what cannot be copied
            out[key] = value
    return out
