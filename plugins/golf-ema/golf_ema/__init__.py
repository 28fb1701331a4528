"""EMA of weights: an fp32 moving average of the whole state dict, applied before quantization.

Usable without the golf pipeline::

    from golf_ema import WeightEMA
    ema = WeightEMA(model, decay=0.997)     # after the compile warmup was undone
    for step in ...: train_step(); ema.update(model)
    ema.copy_to(model)                        # before export
"""
from .ema import DEFAULT_DECAY, WeightEMA

__all__ = ["WeightEMA", "DEFAULT_DECAY"]
