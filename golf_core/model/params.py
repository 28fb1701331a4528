"""Parameter naming rules of the baseline: control tensors and parameter counts (pg_core §4.4)."""
from __future__ import annotations

from typing import Iterable

from torch import nn

#: Substrings that make a parameter a "control tensor": kept in float32 by
#: ``prepare_for_device`` and routed to the scalar Adam group by the optimizer even when 2-D.
#: The baseline's list; a plugin adding a control tensor lists its pattern in
#: ``model.golf_control_patterns`` (the skip-gates plugin adds ``skip_gates``, #1394's list).
CONTROL_TENSOR_PATTERNS: tuple[str, ...] = (
    "attn_scale", "attn_scales", "mlp_scale", "mlp_scales", "resid_mix", "resid_mixes",
    "q_gain", "skip_weight", "skip_weights",
)


#: Model attribute where a plugin may list extra control patterns (shared with golf_core.train.optim).
MODEL_PATTERNS_ATTR = "golf_control_patterns"


def is_control_name(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether parameter ``name`` matches a control pattern (or one of ``extra``)."""
    return any(p in name for p in CONTROL_TENSOR_PATTERNS) or any(p in name for p in extra)


def is_scalar_param(name: str, param: nn.Parameter, extra: Iterable[str] = ()) -> bool:
    """The baseline's scalar rule: ``ndim < 2`` or a control-pattern name."""
    return param.ndim < 2 or is_control_name(name, extra)


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameter elements (a tied/shared tensor counts once).

    17,059,912 for the baseline (sp1024, 9x512); 35,943,512 for PR #1394's model.
    """
    return sum(p.numel() for p in model.parameters())
