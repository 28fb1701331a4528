"""golf-qk-gain: learnable per-head query gain with a chosen init (4.0 in PR #1394).

Functional API (usable without golf): ``set_qk_gain(model, init)``.
"""
from golf_qk_gain.gain import attention_modules, set_qk_gain

__all__ = ["attention_modules", "set_qk_gain"]
