"""Document-independent batched LoRA test-time training (PR #1530) with per-document reset,
phased global SGD on already-scored documents (#1610, #1626) and the #1787 refinements.

Usable without golf (with an ``EvalSession``)::

    from golf_lora_ttt import LoRATTTConfig, lora_ttt
"""
from .attach import attached, bank_shape, per_token_nll, ttt_logits, virtual_layers
from .doc_ttt import LoRATTTConfig, LoRATTTStats, chunk_window, lora_ttt, make_bank, make_optimizer
from .lora import TARGETS, BatchedLoRA, LoRABank
from .phased import GlobalSGDConfig, chunk_lr, global_sgd, phase_boundaries, prefix_documents, segment_loss

__all__ = ["attached", "bank_shape", "per_token_nll", "ttt_logits", "virtual_layers", "LoRATTTConfig", "LoRATTTStats",
           "chunk_window", "lora_ttt", "make_bank", "make_optimizer", "TARGETS", "BatchedLoRA", "LoRABank",
           "GlobalSGDConfig", "chunk_lr", "global_sgd", "phase_boundaries", "prefix_documents", "segment_loss"]
