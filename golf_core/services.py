"""What the run driver offers plugins through ``ctx.services``.

A plugin that needs something only the driver knows (the run's code bytes, the artifact
container around a payload, the active compressor or loader) asks the run context instead of
importing the driver or the tooling. ``golf_core.run.setup.make_context`` attaches a
:class:`RunServices` to every context it makes (:func:`attach`); a context made elsewhere
(unit tests) gets one from :func:`attach`, or answers every service with a one-line error.

This module sits beside the driver: the runtime never imports it (import-linter checks that),
and it only calls the driver's existing functions.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .context import RunContext


class RunServices:
    """The services of one run context (``ctx.services``)."""

    def __init__(self, ctx: "RunContext") -> None:
        self.ctx = ctx

    def code_bytes(self) -> int:
        """Bytes of the ``train_gpt.py`` that ``golf export`` writes for this run: the code part
        of the artifact size (modules imported so far, the resolved recipe, the active plugins)."""
        from .export.shipping import ship_run

        return ship_run(self.ctx).code_bytes

    def compress(self, data: bytes) -> tuple[str, bytes]:
        """``(codec, blob)`` from the active ``golf_compress`` provider, else the core's default
        (``[artifact] byte_shuffle``, then ``[artifact] compressor``)."""
        from .run.artifact import compress

        return compress(data, self.ctx)

    def pack_artifact(self, codec: str, payload: bytes) -> bytes:
        """The bytes of ``artifact.bin`` the run writes around a compressed ``payload``
        (fixed prefix, JSON header with model config, rebuild info and recipe, checksum)."""
        from .quant.artifact import pack_artifact
        from .run.artifact import artifact_for

        return pack_artifact(artifact_for(self.ctx, codec, payload))

    def artifact_overhead(self, codec: str) -> int:
        """Bytes ``artifact.bin`` adds around a payload compressed with ``codec``."""
        return len(self.pack_artifact(codec, b""))

    def make_loader(self, purpose: str = "train") -> Any:
        """A fresh loader from the active ``golf_make_loader`` provider, else the core's
        sequential one; ``purpose`` is ``"train"`` or ``"calibration"``."""
        return self.ctx.plugins.exclusive("golf_make_loader", ctx=self.ctx, purpose=purpose)


def attach(ctx: "RunContext") -> "RunContext":
    """Give ``ctx`` its :class:`RunServices` (``ctx.services``); returns ``ctx``."""
    ctx.services = RunServices(ctx)
    return ctx
