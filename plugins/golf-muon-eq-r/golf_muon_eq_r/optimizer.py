"""MuonEqR: the core's Muon with MuonEq-R's settings and the PR #1394 momentum schedule.

MuonEq-R (arXiv 2603.28254, row variant; research/techniques.md §3, pg_core.md §5.4) changes
one line of Muon: the Nesterov update is scaled to unit L2 norm per output row (norm over the
fan-in, in float32, floored at 1e-7) *before* Newton-Schulz. #1394 pairs it with decoupled
weight decay ``p *= 1 - lr * wd`` using the scheduled lr, and with momentum 0.92 -> 0.99 over
the first 1500 steps. The row normalization is this plugin's preconditioner on the core Muon
(``Muon.preconditioners``, switched by the group option ``row_normalize``); the decay is the core
Muon's ``weight_decay``. This class picks the record's values and attaches the momentum schedule.
"""
from __future__ import annotations

from typing import Any, Iterable

from golf_core.api import MomentumWarmup, Muon

from .momentum import attach_momentum_schedule
from .rows import install_row_normalization

#: PR #1394 defaults (pg_core.md §5.1).
MATRIX_LR = 0.02
MUON_WD = 0.085
MOMENTUM = 0.99
MOMENTUM_WARMUP_START = 0.92
MOMENTUM_WARMUP_STEPS = 1500


class MuonEqR(Muon):
    """Row-normalized Muon with decoupled weight decay and a momentum warmup (PR #1394).

    :param params: 2-D parameters or param-group dicts.
    :param lr: learning rate (a training loop scales it each step; the decay uses that value).
    :param momentum: momentum after the warmup (0.99).
    :param backend_steps: Newton-Schulz iterations (5).
    :param nesterov: Nesterov update ``g + momentum * buf``.
    :param weight_decay: decoupled decay ``p *= 1 - lr * wd`` (0.085).
    :param row_normalize: unit L2 norm per row before Newton-Schulz (True).
    :param momentum_warmup_start: momentum at step 0 (0.92).
    :param momentum_warmup_steps: steps of the linear warmup to ``momentum`` (1500; 0 = none).
    :param muon_kwargs: passed to ``Muon`` (``ns_dtype``, ``compile_ns``, ``rank``, ``world_size``).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = MATRIX_LR,
        momentum: float = MOMENTUM,
        backend_steps: int = 5,
        nesterov: bool = True,
        *,
        weight_decay: float = MUON_WD,
        row_normalize: bool = True,
        momentum_warmup_start: float = MOMENTUM_WARMUP_START,
        momentum_warmup_steps: int = MOMENTUM_WARMUP_STEPS,
        **muon_kwargs: Any,
    ) -> None:
        super().__init__(params, lr, momentum, backend_steps, nesterov, weight_decay=weight_decay, **muon_kwargs)
        self.defaults["row_normalize"] = bool(row_normalize)
        for group in self.param_groups:
            group.setdefault("row_normalize", bool(row_normalize))
        install_row_normalization(self)
        attach_momentum_schedule(self, MomentumWarmup(momentum_warmup_start, momentum, momentum_warmup_steps))
