"""golf-depth-recurrence: run a segment of layers several times with shared weights.

Two forms: PR #1394's (``num_loops``, ``loop_start``, ``loop_end``, switched on at a fraction
of the training clock; PR #1412's progressive variant switches it on in two stages) and PR #1204's (``recur_layers``, switched on at a step, optionally
with untied MLP weights for the repeated pass).

Functional API (usable without golf): ``loop_virtual_layers``, ``repeat_virtual_layers``,
``split_halves``, ``skip_pairs``, ``install_loop(model, ...)``, ``install_repeat(model, ...)``,
``prime_untied(model)``, then ``model.looping_active = True``.
"""
from golf_depth_recurrence.install import install_loop, install_repeat, prime_untied, sync_untied
from golf_depth_recurrence.progressive import ProgressiveSchedule, install_progressive, progressive_stages
from golf_depth_recurrence.layout import loop_virtual_layers, repeat_virtual_layers, skip_pairs, split_halves
from golf_depth_recurrence.skips import SharedLastSlotSkips
from golf_depth_recurrence.untie import UntiedMLPWeights, UntiedPass, untied_passes

__all__ = [
    "ProgressiveSchedule", "SharedLastSlotSkips", "install_progressive", "progressive_stages", "UntiedMLPWeights", "UntiedPass", "install_loop", "install_repeat",
    "loop_virtual_layers", "prime_untied", "repeat_virtual_layers", "skip_pairs", "split_halves",
    "sync_untied", "untied_passes",
]
