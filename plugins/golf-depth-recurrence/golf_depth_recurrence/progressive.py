"""Progressive recurrence (PR #1412): the looped segment switches on in two stages.

With loop segment ``s..e`` and ``num_loops`` n, stage 1 runs the segment twice
(``min(n, 1) + 1`` times) and stage 2 ``n + 1`` times, each split into encoder and decoder
halves like the #1394 form. At 11 layers, (2, 4, 5): stage 1 encoder ``[0..5]``, decoder
``[4,5,6..10]``; stage 2 encoder ``[0..5,4]``, decoder ``[5,4,5,6..10]``. The skip slots are
sized for the largest stage (7); a smaller stage uses the first ``min(len(enc), len(dec))``.

``ProgressiveSchedule`` is a ``LayerSchedule`` whose looped layout is the current stage's:
``looping_active`` off runs the base U-Net, on runs ``stages[stage - 1]``; ``stage`` starts at
the last stage, so switching looping on without naming a stage gives the full loop.
"""
from __future__ import annotations

from typing import Sequence

from golf_core import GolfError
from golf_core.api import LayerSchedule
from golf_depth_recurrence.layout import loop_virtual_layers, split_halves

Layout = tuple[tuple[int, ...], tuple[int, ...]]


class ProgressiveSchedule(LayerSchedule):
    """A base layout and several looped stages; ``stage`` (1-based) picks the one that runs
    while ``looping_active``."""

    def __init__(self, encoder: Sequence[int], decoder: Sequence[int], stages: Sequence[tuple[Sequence[int], Sequence[int]]]):
        if not stages:
            raise GolfError("ProgressiveSchedule: give at least one looped stage")
        self.stages: list[Layout] = [(tuple(int(i) for i in e), tuple(int(i) for i in d)) for e, d in stages]
        super().__init__(encoder, decoder, *self.stages[-1])
        self._stage = len(self.stages)

    @property
    def stage(self) -> int:
        """The looped stage that runs while ``looping_active`` (1..len(stages))."""
        return self._stage

    @stage.setter
    def stage(self, value: int) -> None:
        if not 1 <= int(value) <= len(self.stages):
            raise GolfError(f"ProgressiveSchedule: stage {value} is not in 1..{len(self.stages)}")
        self._stage = int(value)
        self.looped_encoder, self.looped_decoder = self.stages[self._stage - 1]

    def layouts(self) -> list[Layout]:
        """The base layout, then every stage."""
        return [(self.encoder, self.decoder), *self.stages]

    def to_dict(self) -> dict:
        """The layouts, the switch and the stage (for manifests)."""
        out = super().to_dict()
        out["stages"] = [[list(e), list(d)] for e, d in self.stages]
        out["stage"] = self._stage
        return out


def progressive_stages(num_layers: int, num_loops: int, loop_start: int, loop_end: int) -> list[tuple[list[int], list[int]]]:
    """The #1412 stages: the segment twice, then ``num_loops + 1`` times (halves of each virtual list)."""
    return [split_halves(loop_virtual_layers(num_layers, n, loop_start, loop_end))
            for n in (min(num_loops, 1), num_loops)]


def install_progressive(model, num_loops: int, loop_start: int, loop_end: int) -> ProgressiveSchedule:
    """Install a ``ProgressiveSchedule`` (base U-Net + the two #1412 stages) with ``model.set_schedule``."""
    num_layers = model.config.num_layers
    base = LayerSchedule.unet(num_layers)
    schedule = ProgressiveSchedule(base.encoder, base.decoder, progressive_stages(num_layers, num_loops, loop_start, loop_end))
    model.set_schedule(schedule)
    return schedule
