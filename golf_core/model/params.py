"""Parameter naming rules of the baseline: control tensors and parameter counts (pg_core §4.4)."""
from __future__ import annotations

from torch import nn

#: Substrings that make a parameter a "control tensor": kept in float32 by
#: ``prepare_for_device`` and routed to the scalar Adam group by the optimizer even when 2-D.
#: The baseline's list plus ``skip_gates`` (PR #1394's list).
CONTROL_TENSOR_PATTERNS: tuple[str, ...] = (
    "attn_scale", "attn_scales", "mlp_scale", "mlp_scales", "resid_mix", "resid_mixes",
    "q_gain", "skip_weight", "skip_weights", "skip_gates",
)


def is_control_name(name: str) -> bool:
    """Whether parameter ``name`` matches a control pattern."""
    return any(p in name for p in CONTROL_TENSOR_PATTERNS)


def is_scalar_param(name: str, param: nn.Parameter) -> bool:
    """The baseline's scalar rule: ``ndim < 2`` or a control-pattern name."""
    return param.ndim < 2 or is_control_name(name)


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameter elements (a tied/shared tensor counts once).

    17,059,912 for the baseline (sp1024, 9x512); 35,943,512 for PR #1394's model.
    """
    return sum(p.numel() for p in model.parameters())
