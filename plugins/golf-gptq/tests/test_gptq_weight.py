"""GPTQ on one matrix: against a float64 brute-force OBS reference, and against RTN."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from golf_core.quant.intk import quantize_rows_rtn, sdclip_scale
from golf_gptq import gptq_quantize_weight, hessian_error, prepare_hessian


def ref_gptq(W: np.ndarray, H: np.ndarray, scale: np.ndarray, bits: int, damp: float, act_order: bool) -> np.ndarray:
    """Brute force, float64, from the definition: quantize the columns one at a time (act-order);
    before each, set every not-yet-quantized column to its optimal value given the errors of the
    quantized ones: W_F + E_Q H_QF H_FF^-1 (explicit inverse every step, no Cholesky, no blocks)."""
    W = W.astype(np.float64).copy()
    H = H.astype(np.float64).copy()
    cr = 2 ** (bits - 1) - 1
    n = H.shape[0]
    dead = np.diag(H) == 0
    for d in np.nonzero(dead)[0]:
        H[d, d] = 1.0
    W[:, dead] = 0.0
    H = H + damp * np.mean(np.diag(H)) * np.eye(n)
    order = list(np.argsort(-np.diag(H), kind="stable")) if act_order else list(range(n))
    E = np.zeros_like(W)
    Q = np.zeros(W.shape, dtype=np.int64)
    done: list[int] = []
    for idx, j in enumerate(order):
        F = order[idx:]
        if done:
            adj = E[:, done] @ H[np.ix_(done, F)] @ np.linalg.inv(H[np.ix_(F, F)])
            w = W[:, j] + adj[:, 0]
        else:
            w = W[:, j]
        q = np.clip(np.round(w / scale), -cr, cr)
        Q[:, j] = q
        E[:, j] = W[:, j] - q * scale
        done.append(j)
    return Q


def problem(rows=6, cols=20, seed=0, dead=(5,)):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(rows, cols, generator=g, dtype=torch.float64) * 0.1
    A = torch.randn(cols, cols, generator=g, dtype=torch.float64)
    X = torch.randn(200, cols, generator=g, dtype=torch.float64) @ A  # correlated inputs
    X[:, list(dead)] = 0.0
    return W, X.T @ X


@pytest.mark.parametrize("act_order", [True, False])
@pytest.mark.parametrize("block_size", [128, 8, 1])
def test_matches_float64_brute_force(act_order, block_size):
    W, H = problem()
    scale = sdclip_scale(W, 4, 3.0)
    q, s = gptq_quantize_weight(W, H, bits=4, clip_sigmas=3.0, block_size=block_size, act_order=act_order)
    assert torch.equal(s, scale)
    ref = ref_gptq(W.numpy(), H.numpy(), scale.double().numpy(), 4, 0.01, act_order)
    assert q.dtype == torch.int8
    assert np.array_equal(q.numpy().astype(np.int64), ref)
    assert torch.all(q[:, 5] == 0)  # the dead input's column


def test_float32_agrees_with_reference():
    W, H = problem(rows=16, cols=48, seed=3, dead=())
    scale = sdclip_scale(W, 6, 12.85)
    q, _ = gptq_quantize_weight(W.float(), H.float(), bits=6, clip_sigmas=12.85, block_size=16)
    ref = ref_gptq(W.numpy(), H.numpy(), scale.double().numpy(), 6, 0.01, True)
    diff = q.numpy().astype(np.int64) - ref
    assert (diff != 0).mean() < 0.01 and np.abs(diff).max() <= 1


def test_beats_rtn_on_hessian_weighted_error():
    g = torch.Generator().manual_seed(7)
    rows, cols = 64, 256
    W = torch.randn(rows, cols, generator=g) * 0.02
    A = torch.randn(cols, cols, generator=g) / cols ** 0.5 + torch.eye(cols)
    X = torch.randn(4096, cols, generator=g) @ A
    H = X.T @ X / 16
    for bits, k in ((6, 12.85), (4, 4.0), (3, 3.0)):
        q, s = gptq_quantize_weight(W, H, bits=bits, clip_sigmas=k)
        q_rtn = quantize_rows_rtn(W, s, bits)
        deq = q.float() * s.float()[:, None]
        deq_rtn = q_rtn.float() * s.float()[:, None]
        e_gptq, e_rtn = hessian_error(W, deq, H), hessian_error(W, deq_rtn, H)
        assert e_gptq < 0.8 * e_rtn, (bits, e_gptq, e_rtn)


def test_prepared_hessian_is_reusable_and_damping_escalates():
    W, H = problem(dead=())
    prep = prepare_hessian(H)
    assert prep.damp == 0.01
    # a rank-deficient, undamped Hessian gets more damping instead of failing
    Hs = torch.ones(6, 6, dtype=torch.float64)
    p2 = prepare_hessian(Hs, damp=0.0)
    assert p2.damp > 0


def test_act_order_follows_the_damped_diagonal_in_float32():
    """The records (#1394 on) add damp = 0.01 * mean(diag) (the mean of ``H.diag()``, a contiguous
    copy) to the fp32 diagonal, then sort it: small distinct entries that round to the same damped
    value tie, and the tie order is the damped one's."""
    n = 384
    g = torch.Generator().manual_seed(2)  # a case where the mean of the strided diagonal view rounds otherwise
    X = torch.randn(2 * n, n, generator=g) * torch.logspace(-2, 1.5, n)
    X[:, n // 2:] *= 1e-5  # half the inputs nearly dead: their damped diagonal entries round to ties
    H = (X.T @ X).float()
    prep = prepare_hessian(H)
    Hd = H.clone()
    Hd.diagonal().add_(0.01 * H.diag().mean())
    want = torch.argsort(Hd.diag(), descending=True)
    assert torch.equal(prep.perm, want)
    assert not torch.equal(want, torch.argsort(H.diag(), descending=True))  # the undamped order differs
    assert torch.equal(prep.diag, Hd.diag())
    Hp = Hd[want][:, want]
    assert torch.equal(prep.hinv_upper, torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(Hp)), upper=True))
