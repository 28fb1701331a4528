"""PR #1729's Muon weight-decay taper; usable without golf.

::

    mul = wd_multiplier(frac, start=0.70, final=0.50)   # 1 until 70% of training, then linear to 0.5
    optimizers.step_schedules.append(MuonWDTaper(0.70, 0.50))
"""
from .taper import MuonWDTaper, wd_multiplier

__all__ = ["MuonWDTaper", "wd_multiplier"]
