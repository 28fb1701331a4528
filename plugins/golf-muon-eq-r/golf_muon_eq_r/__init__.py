"""MuonEq-R: row-normalized Muon with decoupled weight decay and the PR #1394 momentum schedule.

Usable without the golf pipeline::

    from golf_muon_eq_r import MuonEqR
    opt = MuonEqR(matrices, lr=0.02)          # #1394 defaults: wd 0.085, momentum 0.92 -> 0.99 / 1500

or, on optimizers built by ``golf_core.train.optim.build_optimizers``::

    from golf_muon_eq_r import configure_muon_eq_r
    configure_muon_eq_r(optimizer_set)
"""
from .configure import configure_muon_eq_r
from .momentum import STEP_KEY, attach_momentum_schedule, detach_momentum_schedule, momentum_at
from .optimizer import MATRIX_LR, MOMENTUM, MOMENTUM_WARMUP_START, MOMENTUM_WARMUP_STEPS, MUON_WD, MuonEqR
from .rows import ROW_NORM_EPS, install_row_normalization, precondition_rows, row_normalize

__all__ = [
    "MuonEqR", "configure_muon_eq_r", "row_normalize", "ROW_NORM_EPS", "precondition_rows", "install_row_normalization", "momentum_at",
    "attach_momentum_schedule", "detach_momentum_schedule", "STEP_KEY",
    "MATRIX_LR", "MUON_WD", "MOMENTUM", "MOMENTUM_WARMUP_START", "MOMENTUM_WARMUP_STEPS",
]
