"""Causal (context-only) SLOT done per window (techniques.md §6.4): each window's delta is fitted
only on the window's context positions, whose targets earlier windows scored, then used to score
the window's new positions. AdamW in hidden space (#1306's optimizer) or L-BFGS in logit space
(#1350's), each separable per window. ``shared=True`` reproduces the published batch-shared,
non-causal forms.

Usable without golf::

    from golf_causal_slot import context_mask, fit_hidden_delta, fit_window_logit_deltas
"""
from golf_core.api import SoftcapHead, frozen, head_of

from .adamw import AdamWDeltaConfig, fit_hidden_delta, hidden_delta_nll
from .evaluate import CausalSlotConfig, causal_slot_evaluate
from .lbfgs import LBFGSConfig, fit_logit_delta, fit_shared_logit_delta, fit_window_logit_deltas
from .masks import context_mask, first_scored

__all__ = ["AdamWDeltaConfig", "fit_hidden_delta", "hidden_delta_nll", "CausalSlotConfig", "causal_slot_evaluate",
           "SoftcapHead", "frozen", "head_of", "LBFGSConfig", "fit_logit_delta", "fit_shared_logit_delta",
           "fit_window_logit_deltas", "context_mask", "first_scored"]
