"""Pre-quantization AdamW TTT (#1306 / #1423): fine-tune the (EMA) weights for a few epochs before
GPTQ. On validation tokens it trains on validation data (illegal, techniques.md §7); on a training
slice inside the training clock it is an ordinary end-of-training fine-tune.

Usable without golf::

    from golf_prequant_ttt import PrequantConfig, prequant_adapt, rank_sequences
"""
from .adapt import PrequantConfig, PrequantStats, epoch_lr, prequant_adapt
from .sequences import rank_sequences, training_slice

__all__ = ["PrequantConfig", "PrequantStats", "epoch_lr", "prequant_adapt", "rank_sequences", "training_slice"]
