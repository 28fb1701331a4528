"""When golf runs a fused GPU kernel instead of its plain-PyTorch maths.

A fused kernel is golf's own Triton code for maths that also exists as plain PyTorch (the
reference it must equal): the softcapped cross-entropy (``golf_core.model.softcap_ce``) and
plugins' own (e.g. golf-leaky-relu-sq's fused MLP). :func:`fused_kernel_check` decides once per
kernel and device: the kernel runs only on CUDA, with ``triton`` importable, under
``[model] fused_kernels = "auto"``, and when its probe (the kernel against the reference on small
random inputs) stays within its tolerance. Otherwise the reference path runs, so a broken Triton
build costs speed, never correctness. :func:`kernel_checks` lists every decision (for manifests
and benches).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Union

import importlib

import torch


@dataclass(frozen=True)
class KernelCheck:
    """One decision: ``used`` the fused kernel on ``device``, the probe's ``max_abs_diff`` against
    the reference (None when it did not run) and ``reason`` when not used."""

    name: str
    device: str
    used: bool
    max_abs_diff: Optional[float]
    tolerance: float
    reason: str = ""


_CHECKS: dict[tuple[str, str], KernelCheck] = {}


def triton_unavailable(device: Union[str, torch.device]) -> Optional[str]:
    """``None`` when Triton kernels can run on ``device``, else why not (one line)."""
    device = torch.device(device)
    if device.type != "cuda":
        return f"the device is {device.type}; golf's Triton kernels run on CUDA only"
    if not torch.cuda.is_available():
        return "CUDA is not available"
    try:
        importlib.import_module("triton")  # by name: only CUDA runs load it
    except Exception as e:  # ImportError, or a broken install raising at import time
        return f"triton cannot be imported ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    return None


def fused_kernel_check(name: str, device: Union[str, torch.device], probe: Callable[[torch.device], float],
                       tolerance: float, setting: str = "auto") -> KernelCheck:
    """Decide (once per ``name`` and ``device``; cached) whether fused kernel ``name`` runs.

    :param probe: ``probe(device) -> max |kernel - reference|`` on small random inputs; it is
        called only when Triton can run on ``device``. An exception counts as a failed probe.
    :param tolerance: the largest difference accepted.
    :param setting: ``[model] fused_kernels``: ``"auto"`` or ``"off"`` (never used; not cached).
    """
    device = torch.device(device)
    if setting == "off":
        return KernelCheck(name, str(device), False, None, tolerance, "[model] fused_kernels = 'off'")
    key = (name, str(device))
    if key in _CHECKS:
        return _CHECKS[key]
    reason = triton_unavailable(device)
    diff: Optional[float] = None
    if reason is None:
        try:
            diff = float(probe(device))
        except Exception as e:
            reason = f"the probe raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        else:
            if not (math.isfinite(diff) and diff <= tolerance):
                reason = f"the probe's max abs difference {diff:.3g} exceeds the tolerance {tolerance:.3g}"
    check = KernelCheck(name, str(device), reason is None, diff, tolerance, reason or "")
    _CHECKS[key] = check
    return check


def kernel_checks() -> list[dict]:
    """Every cached decision, as plain dicts."""
    return [asdict(c) for c in _CHECKS.values()]
