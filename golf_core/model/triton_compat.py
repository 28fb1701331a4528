"""``triton`` for golf's kernel modules, importable without Triton.

``golf_core.model.triton_*`` run only where ``golf_core.model.fused`` found Triton on a CUDA
device, but they must import anywhere (golf's export test imports every module a script can
reach). Without Triton, ``triton`` and ``tl`` are None and :func:`jit` leaves a kernel a plain,
never-launched function (its ``tl.constexpr`` annotations are postponed strings).
"""
from __future__ import annotations

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = tl = None


def jit(fn):
    """``triton.jit(fn)`` where Triton is installed, else ``fn`` unchanged."""
    return triton.jit(fn) if triton is not None else fn
