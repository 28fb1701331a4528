"""The clip-multiplier search lands within the tolerance under the budget."""
from __future__ import annotations

import math

import pytest

from golf_core.errors import GolfError
from golf_gptq import fit_clip_sigmas


def size_model(k: float) -> int:
    # bits per weight ~ b - log2 k + const, with a little compressor noise
    return int(2_000_000 * (6.5 - math.log2(k)) / 8 + 3_000 * math.sin(7 * k))


@pytest.mark.parametrize("budget", [400_000, 900_000, 1_300_000])
def test_lands_within_tolerance(budget):
    r = fit_clip_sigmas(size_model, budget, k0=12.85, tol=0.002)
    assert r.converged and budget * 0.998 <= r.size <= budget
    assert r.size == size_model(r.k) and len(r.probes) <= 16


def test_impossible_budget():
    with pytest.raises(GolfError, match="cannot fit the budget"):
        fit_clip_sigmas(size_model, 10_000, k0=12.85, k_max=50)


def test_budget_too_large_to_fill():
    r = fit_clip_sigmas(size_model, 10_000_000, k0=12.85, k_min=1.0)
    assert not r.converged and r.k == 1.0
