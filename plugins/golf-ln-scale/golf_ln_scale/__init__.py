"""golf-ln-scale: scale each block's normed inputs by 1/sqrt(physical index + 1) (PR #1394).

Functional API: ``ln_scale_factor(i)``, ``install_ln_scale(model)``.
"""
from golf_ln_scale.scale import install_ln_scale, ln_scale_factor

__all__ = ["install_ln_scale", "ln_scale_factor"]
