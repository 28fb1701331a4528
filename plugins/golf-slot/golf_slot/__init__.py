"""SLOT (PR #1229 scored-position, PR #1176 standard): eval-time delta on the final hidden state
plus a logit bias, fitted on the very positions it then scores. Not causal (techniques.md §5).

Usable without golf::

    from golf_slot import SlotConfig, optimize_slot, slot_nll, SoftcapHead
"""
from golf_core.api import SoftcapHead, frozen, head_of

from .evaluate import loss_mask_for, slot_evaluate
from .slot import SlotConfig, cosine_lr, optimize_slot, slot_nll

__all__ = ["SlotConfig", "cosine_lr", "optimize_slot", "slot_nll", "SoftcapHead", "head_of", "frozen",
           "slot_evaluate", "loss_mask_for"]
