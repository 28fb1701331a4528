"""RoPE against an independent float64 complex-number reference (pg_core §4.2, §5.2)."""
import math

import pytest
import torch

from golf_core.errors import RecipeError
from golf_core.model import Rotary


def reference_rope(x, base, rope_dims):
    """x [B,T,H,D] float64: pair dim j with dim j+half of the first rope_dims dims as the complex
    number x_j + i*x_{j+half}, multiply by exp(-i * t * base**(-2j/rope_dims))."""
    B, T, H, D = x.shape
    half = rope_dims // 2
    out = x.clone()
    for t in range(T):
        for j in range(half):
            theta = t * math.pow(base, -2.0 * j / rope_dims)
            z = torch.complex(x[:, t, :, j], x[:, t, :, j + half]) * complex(math.cos(theta), -math.sin(theta))
            out[:, t, :, j] = z.real
            out[:, t, :, j + half] = z.imag
    return out


def exact_rotary(head_dim, base, rope_dims=None):
    rot = Rotary(head_dim, base=base, rope_dims=rope_dims).double()
    rd = rot.rope_dims
    rot.inv_freq.copy_(torch.tensor([math.pow(base, -2.0 * j / rd) for j in range(rd // 2)], dtype=torch.float64))
    return rot


def test_inv_freq_matches_formula():
    rot = Rotary(64, base=10000.0)
    expect = torch.tensor([10000.0 ** (-(2 * j) / 64) for j in range(32)], dtype=torch.float64)
    assert rot.inv_freq.dtype == torch.float32 and rot.inv_freq.shape == (32,)
    torch.testing.assert_close(rot.inv_freq.double(), expect, rtol=2e-7, atol=0)
    part = Rotary(64, base=10000.0, rope_dims=16)
    expect16 = torch.tensor([10000.0 ** (-(2 * j) / 16) for j in range(8)], dtype=torch.float64)
    torch.testing.assert_close(part.inv_freq.double(), expect16, rtol=2e-7, atol=0)


@pytest.mark.parametrize("rope_dims", [None, 16, 2])
def test_rotation_matches_complex_reference(rope_dims):
    torch.manual_seed(0)
    D, base = 32 if rope_dims != 16 else 64, 500.0
    q = torch.randn(2, 11, 4, D, dtype=torch.float64)
    k = torch.randn(2, 11, 2, D, dtype=torch.float64)
    rot = exact_rotary(D, base, rope_dims)
    q2, k2 = rot(q, k)
    rd = D if rope_dims is None else rope_dims
    torch.testing.assert_close(q2, reference_rope(q, base, rd), rtol=0, atol=1e-12)
    torch.testing.assert_close(k2, reference_rope(k, base, rd), rtol=0, atol=1e-12)
    if rd < D:  # the tail passes through untouched
        assert torch.equal(q2[..., rd:], q[..., rd:])


def test_scores_depend_only_on_relative_position():
    torch.manual_seed(1)
    rot = exact_rotary(16, 10000.0)
    a, b = torch.randn(16, dtype=torch.float64), torch.randn(16, dtype=torch.float64)
    T = 12
    q = a.expand(1, T, 1, 16).clone()
    k = b.expand(1, T, 1, 16).clone()
    qr, kr = rot(q, k)
    s = torch.einsum("d,d->", qr[0, 7, 0], kr[0, 3, 0])
    for m in range(4, T):
        torch.testing.assert_close(torch.einsum("d,d->", qr[0, m, 0], kr[0, m - 4, 0]), s, rtol=0, atol=1e-12)


def test_position_zero_is_identity_and_norm_preserved():
    torch.manual_seed(2)
    rot = Rotary(8, base=10000.0)
    q, k = torch.randn(1, 5, 2, 8), torch.randn(1, 5, 1, 8)
    q2, k2 = rot(q, k)
    assert torch.equal(q2[:, 0], q[:, 0])
    torch.testing.assert_close(q2.norm(dim=-1), q.norm(dim=-1))


def test_bad_rope_dims():
    for bad in (0, 3, 66):
        with pytest.raises(RecipeError):
            Rotary(64, rope_dims=bad)
