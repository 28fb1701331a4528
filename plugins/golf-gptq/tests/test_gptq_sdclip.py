"""Hessian-aware SDClip (#1412) against a float64 reference written from the formula."""
from __future__ import annotations

import numpy as np
import torch

from golf_core.quant.intk import sdclip_scale
from golf_gptq import GPTQConfig, GPTQModelQuantizer, prepare_hessian
from golf_gptq.sdclip import hessian_sdclip_scale


def ref_scale(W: np.ndarray, H: np.ndarray, bits: int, k: float, lam: float, damp: float = 0.01) -> np.ndarray:
    """float64: dead inputs -> 1, damping by damp*mean(diag), c = diag/mean, r = mean|W| c, r /= mean r."""
    d = np.diag(H).astype(np.float64).copy()
    d[d == 0] = 1.0
    d = d + damp * d.mean()
    c = np.maximum(d, 1e-8) / np.maximum(d, 1e-8).mean()
    r = (np.abs(W) * c[None, :]).mean(axis=1)
    r = r / r.mean()
    std = W.std(axis=1, ddof=1)
    return np.maximum(k * std * (1 + lam * (r - 1)) / (2 ** (bits - 1) - 1), 1e-10)


def problem(rows=32, cols=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(rows, cols, generator=g) * torch.linspace(0.2, 3.0, rows)[:, None] * 0.02
    X = torch.randn(512, cols, generator=g) * torch.linspace(0.1, 4.0, cols)
    X[:, 3] = 0.0  # a dead input
    return W, X.T @ X


def test_matches_float64_formula():
    W, H = problem()
    prep = prepare_hessian(H)
    for bits, k, lam in ((6, 12.85, 0.175), (8, 20.0, 0.175), (6, 12.85, 0.3)):
        s = hessian_sdclip_scale(W, prep.diag, bits, k, lam)
        ref = ref_scale(W.double().numpy(), H.double().numpy(), bits, k, lam)
        assert s.dtype == torch.float16
        # equal after fp16 rounding, up to one fp16 step where float32 and float64 straddle a tie
        np.testing.assert_allclose(s.double().numpy(), ref, rtol=1e-3)
        assert (s.numpy() == ref.astype(np.float16)).mean() > 0.9


def test_lambda_zero_is_plain_sdclip_and_lambda_spreads_steps():
    W, H = problem(seed=1)
    prep = prepare_hessian(H)
    assert torch.equal(hessian_sdclip_scale(W, prep.diag, 6, 12.85, 0.0), sdclip_scale(W, 6, 12.85))
    s0 = sdclip_scale(W, 6, 12.85).double()
    s = hessian_sdclip_scale(W, prep.diag, 6, 12.85, 0.175).double()
    ratio = (s / s0).numpy()
    ref_r = ref_scale(W.double().numpy(), H.double().numpy(), 6, 1.0, 1.0) / ref_scale(
        W.double().numpy(), H.double().numpy(), 6, 1.0, 0.0)
    # rows that matter more under H get larger steps, by 1 + lambda*(r - 1)
    np.testing.assert_allclose(ratio, 1 + 0.175 * (ref_r - 1), rtol=2e-3)


def test_quantizer_uses_the_hessian_aware_step():
    W, H = problem(rows=64, cols=40, seed=2)
    sd = {"blocks.0.attn.c_q.weight": W}
    cfg = GPTQConfig(min_numel=100, hessian_clip_lambda=0.175)
    qm = GPTQModelQuantizer(sd, {"blocks.0.attn.c_q.weight": H}, cfg).quantize()
    s = qm.tensors["blocks.0.attn.c_q.weight.scale"]
    ref = ref_scale(W.double().numpy(), H.double().numpy(), 6, 12.85, 0.175)
    np.testing.assert_allclose(s.double().numpy(), ref, rtol=1e-3)
    assert qm.meta["gptq"]["hessian_clip_lambda"] == 0.175
