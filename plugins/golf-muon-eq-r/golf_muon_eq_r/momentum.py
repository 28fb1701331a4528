"""The PR #1394 Muon momentum schedule, attached to any torch optimizer through step hooks.

``momentum = (1 - f) * start + f * end`` with ``f = min(step / steps, 1)``, where ``step`` is
the number of optimizer steps already taken (0 for the first step), exactly as the record's
loop sets it before each step (research/pg_core.md §5.4: 0.92 -> 0.99 over 1500 steps).

The step count lives in every param group under :data:`STEP_KEY`, so it is part of
``optimizer.state_dict()``: a checkpoint resumes the schedule where it was, and a compile
warmup that restores the optimizer's state also rewinds the schedule. The schedule is applied
inside ``optimizer.step()`` (a pre-step hook), so it wins over any momentum a training loop set
on the groups before calling ``step()``.
"""
from __future__ import annotations

from typing import Any

import torch
from golf_core.api import MomentumWarmup

#: Param-group key counting the steps the schedule has seen.
STEP_KEY = "momentum_step"
_HOOKS_ATTR = "_golf_momentum_hooks"
#: Attribute holding the attached schedule (a ``MomentumWarmup``) on the optimizer.
SCHEDULE_ATTR = "golf_momentum_schedule"


def momentum_at(step: int, start: float = 0.92, end: float = 0.99, steps: int = 1500) -> float:
    """The momentum for the step after ``step`` completed steps."""
    return MomentumWarmup(start=start, end=end, steps=steps)(step)


def detach_momentum_schedule(opt: torch.optim.Optimizer) -> None:
    """Remove a schedule attached by :func:`attach_momentum_schedule` (no-op when none)."""
    for handle in getattr(opt, _HOOKS_ATTR, ()):
        handle.remove()
    if hasattr(opt, _HOOKS_ATTR):
        delattr(opt, _HOOKS_ATTR)
    if hasattr(opt, SCHEDULE_ATTR):
        delattr(opt, SCHEDULE_ATTR)


def attach_momentum_schedule(opt: torch.optim.Optimizer, schedule: MomentumWarmup) -> None:
    """Make ``opt`` set every group's ``momentum`` from ``schedule`` before each ``step()``.

    Replaces a schedule attached earlier. Groups keep their step count under :data:`STEP_KEY`
    (starting at 0, or where a loaded state dict left it).
    """
    detach_momentum_schedule(opt)
    for g in opt.param_groups:
        g.setdefault(STEP_KEY, 0)
        g["momentum"] = schedule(int(g[STEP_KEY]))
    opt.defaults.setdefault(STEP_KEY, 0)

    def before_step(o: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        for g in o.param_groups:
            g["momentum"] = schedule(int(g.get(STEP_KEY, 0)))

    def after_step(o: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        for g in o.param_groups:
            g[STEP_KEY] = int(g.get(STEP_KEY, 0)) + 1

    handles = (opt.register_step_pre_hook(before_step), opt.register_step_post_hook(after_step))
    setattr(opt, _HOOKS_ATTR, handles)
    setattr(opt, SCHEDULE_ATTR, schedule)
