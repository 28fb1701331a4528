"""Install a depth-recurrence schedule on a ``GPT`` (its ``schedule`` and ``skips`` seams)."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from golf_core.api import LayerSchedule
from golf_depth_recurrence.layout import loop_virtual_layers, repeat_virtual_layers, split_halves
from golf_depth_recurrence.skips import SharedLastSlotSkips
from golf_depth_recurrence.untie import UntiedPass, untied_passes


def install_loop(model: nn.Module, num_loops: int, loop_start: int, loop_end: int) -> LayerSchedule:
    """The PR #1394 form: base layout = the U-Net halves, looped layout = the virtual list's halves.

    ``GPT.set_schedule`` resizes ``model.skips`` to ``max(min(len(enc), len(dec)))`` slots over
    both layouts (7 for (2, 4, 5) at 11 layers), keeping the skips' type (e.g. gated).
    """
    num_layers = model.config.num_layers
    enc, dec = split_halves(loop_virtual_layers(num_layers, num_loops, loop_start, loop_end))
    base = LayerSchedule.unet(num_layers)
    schedule = LayerSchedule(base.encoder, base.decoder, enc, dec)
    model.set_schedule(schedule)
    return schedule


def install_repeat(model: nn.Module, recur_layers: Sequence[int], untie_mlp: str = "none") -> LayerSchedule:
    """The PR #1204 form: each of ``recur_layers`` runs once more after the segment.

    With ``untie_mlp`` ``"down"``/``"full"`` the repeated passes get their own MLP weights:
    ``UntiedPass`` modules appended to ``model.blocks`` (indices ``L..``) that the looped layout
    runs instead of the shared block. Skip slots stay at the base layout's count, the extra
    decoder position reusing the last slot (``SharedLastSlotSkips``), as #1204 does.
    """
    num_layers = model.config.num_layers
    if len(model.blocks) != num_layers:
        raise ValueError(f"model.blocks has {len(model.blocks)} entries, expected {num_layers} (depth recurrence installed twice?)")
    virtual = repeat_virtual_layers(num_layers, recur_layers)
    layers = sorted(set(int(r) for r in recur_layers))
    if untie_mlp != "none":
        cutoff = layers[-1] + 1
        for k, phys in enumerate(layers):
            model.blocks.append(UntiedPass(model.blocks[phys], phys, untie_mlp))  # type: ignore[arg-type]
            virtual[cutoff + k] = num_layers + k
    enc, dec = split_halves(virtual)
    base = LayerSchedule.unet(num_layers)
    base_slots = min(len(base.encoder), len(base.decoder))
    schedule = LayerSchedule(base.encoder, base.decoder, enc, dec)
    if schedule.num_skips > base_slots and model.skips.num_skips == base_slots:
        model.skips = SharedLastSlotSkips(model.skips, schedule.num_skips)
    model.set_schedule(schedule)
    return schedule


def sync_untied(model: nn.Module) -> None:
    """Refresh every untied pass's view of its shared block (after other plugins edited it)."""
    for p in untied_passes(model):
        p.sync()


def prime_untied(model: nn.Module) -> int:
    """Copy shared MLP weights into every untied pass; return how many passes were primed."""
    passes = untied_passes(model)
    for p in passes:
        p.prime()
    return len(passes)
