"""Polar Express Newton-Schulz coefficients for Muon (PR #1787, after PR #1344); usable without golf.

::

    from golf_core.api import Muon
    opt = Muon(matrices, lr=0.02)
    opt.ns_coefficients = POLAR_EXPRESS    # iteration i uses POLAR_EXPRESS[i]; at most 5 iterations
"""
from .coefficients import POLAR_EXPRESS, install

__all__ = ["POLAR_EXPRESS", "install"]
