"""The five per-iteration quintic Newton-Schulz tuples ``(a, b, c)`` that PR #1787 runs.

They come from the Polar Express method (Amsel, Persson, Musco, Gower, "The Polar Express:
Optimal Matrix Sign Methods and Their Application to the Muon Algorithm", arXiv:2505.16932):
each iteration's odd quintic ``p(x) = a x + b x^3 + c x^5`` is the minimax-optimal one for the
interval the previous iterations leave, so the singular values are driven to 1 faster than with
the fixed NS5 tuple ``(3.4445, -4.775, 2.0315)``. Iteration ``i`` uses tuple ``i``; asked for more
than five iterations, #1787 still runs five (its code slices or takes the whole table).
"""
from __future__ import annotations

from typing import Any

#: PR #1787's table (``records/track_10min_16mb/2026-04-23_..._PolarNS_MinLR_FusedCE``), as run.
POLAR_EXPRESS: tuple[tuple[float, float, float], ...] = (
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
)


def install(optimizers: Any, table: tuple = POLAR_EXPRESS, batched: bool = True) -> int:
    """Set ``ns_coefficients = table`` (and ``ns_batched``, #1787's arithmetic order) on every
    Muon of an ``OptimizerSet``; returns how many."""
    muons = optimizers.muons()
    for muon in muons:
        muon.ns_coefficients = table
        muon.ns_batched = batched
    return len(muons)
