"""Turn the Muon optimizers of a golf ``OptimizerSet`` (or any core ``Muon``) into MuonEq-R.

The row normalization is this plugin's preconditioner (:mod:`golf_muon_eq_r.rows`), switched by
the group option ``row_normalize``; the decay is the core Muon's ``weight_decay`` group option.
This installs the one and sets both options on every group, keeps every other
setting (lr, ``base_lr``, Newton-Schulz dtype and compilation, rank split), and attaches the
#1394 momentum schedule. The Adam groups are left alone: their decoupled decay is the
recipe's ``[train] embed_wd`` / ``adam_wd`` (see README).
"""
from __future__ import annotations

from typing import Any, Iterable, Union

from golf_core.api import MomentumWarmup, Muon, OptimizerSet, PluginError

from .momentum import attach_momentum_schedule
from .rows import install_row_normalization
from .optimizer import MOMENTUM, MOMENTUM_WARMUP_START, MOMENTUM_WARMUP_STEPS, MUON_WD


def configure_muon_eq_r(
    target: Union[OptimizerSet, Muon, Iterable[Muon]],
    *,
    row_normalize: bool = True,
    weight_decay: float = MUON_WD,
    momentum: float = MOMENTUM,
    momentum_warmup_start: float = MOMENTUM_WARMUP_START,
    momentum_warmup_steps: int = MOMENTUM_WARMUP_STEPS,
) -> list[Muon]:
    """Set MuonEq-R's options and momentum schedule on every Muon of ``target``.

    :param target: an ``OptimizerSet`` (its ``muons()``), one ``Muon``, or several.
    :return: the Muons configured. PluginError when there is none.
    """
    if isinstance(target, OptimizerSet):
        muons = target.muons()
    elif isinstance(target, Muon):
        muons = [target]
    else:
        muons = list(target)
    if not muons:
        raise PluginError("muon-eq-r: the optimizer set has no Muon optimizer to configure (no block matrices?)")
    schedule = MomentumWarmup(start=momentum_warmup_start, end=momentum, steps=momentum_warmup_steps)
    for muon in muons:
        if not isinstance(muon, Muon):
            raise PluginError(f"muon-eq-r: expected golf_core.train.muon.Muon, got {type(muon).__name__}")
        settings: dict[str, Any] = {"row_normalize": bool(row_normalize), "weight_decay": float(weight_decay)}
        muon.defaults.update(settings)
        for group in muon.param_groups:
            group.update(settings)
        install_row_normalization(muon)
        attach_momentum_schedule(muon, schedule)
    return muons
