"""Muon against an independent float64 reference (numpy), bf16 default and exact paths."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from golf_core.train.muon import Muon, zeropower_via_newtonschulz5


# ---- independent float64 reference ------------------------------------------------------------

def ref_ns5(G: np.ndarray, steps: int = 5, eps: float = 1e-7) -> np.ndarray:
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.astype(np.float64)
    X = X / (np.sqrt((X * X).sum()) + eps)
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * (A @ A)) @ X
    return X.T if tall else X


class RefMuon:
    """Muon written from pg_core.md §4.3/§5.4 in float64 numpy."""

    def __init__(self, params, nesterov=True, row_normalize=False, weight_decay=0.0):
        self.p = [np.array(x, dtype=np.float64) for x in params]
        self.buf = [np.zeros_like(x) for x in self.p]
        self.nesterov = nesterov
        self.row_normalize = row_normalize
        self.wd = weight_decay

    def step(self, grads, lr, momentum, steps=5):
        for i, g in enumerate(grads):
            g = np.asarray(g, dtype=np.float64)
            self.buf[i] = momentum * self.buf[i] + g
            u = g + momentum * self.buf[i] if self.nesterov else self.buf[i].copy()
            if self.row_normalize:
                u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-7)
            o = ref_ns5(u, steps) * math.sqrt(max(1.0, u.shape[0] / u.shape[1]))
            if self.wd:
                self.p[i] = self.p[i] * (1 - lr * self.wd)
            self.p[i] = self.p[i] - lr * o


SHAPES = [(16, 8), (8, 24), (12, 12)]   # tall (transposed, scaled by sqrt 2), wide, square


def _rows(g, p, group):
    """A row normalization through the preconditioner seam (torch; RefMuon's is numpy)."""
    return g / g.norm(dim=-1, keepdim=True).clamp_min(1e-7)


def _run_pair(dtype, ns_dtype, nsteps=4, seed=0, with_init=False, **kw):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) * 0.1 for s in SHAPES]
    params = [torch.nn.Parameter(torch.tensor(x, dtype=dtype)) for x in init]
    opt = Muon(params, lr=0.05, momentum=0.9, ns_dtype=ns_dtype,
               **{k: v for k, v in kw.items() if k != "row_normalize"})
    if kw.get("row_normalize"):
        opt.preconditioners.append(_rows)
    ref = RefMuon(init, nesterov=kw.get("nesterov", True), row_normalize=kw.get("row_normalize", False),
                  weight_decay=kw.get("weight_decay", 0.0))
    for t in range(nsteps):
        grads = [rng.standard_normal(s) for s in SHAPES]
        lr, mom = 0.05 * (1 - 0.1 * t), 0.85 + 0.03 * t      # the loop changes both per step
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g, dtype=dtype)
        for group in opt.param_groups:
            group["lr"], group["momentum"] = lr, mom
        opt.step()
        ref.step(grads, lr, mom)
    got = [p.detach().double().numpy() for p in params]
    return (got, ref.p, init) if with_init else (got, ref.p)


def test_ns5_float64_matches_reference_exactly():
    rng = np.random.default_rng(1)
    for shape in SHAPES:
        G = rng.standard_normal(shape)
        got = zeropower_via_newtonschulz5(torch.tensor(G), dtype=torch.float64).numpy()
        np.testing.assert_allclose(got, ref_ns5(G), rtol=0, atol=1e-12)


def test_ns5_bf16_default_close_to_reference():
    rng = np.random.default_rng(2)
    for shape in SHAPES:
        G = rng.standard_normal(shape)
        got = zeropower_via_newtonschulz5(torch.tensor(G, dtype=torch.float32))
        assert got.dtype == torch.bfloat16 and tuple(got.shape) == shape
        ref = ref_ns5(G)
        # bf16 (8 mantissa bits) through 5 quintic iterations: a few percent, measured 2-5 %
        rel = np.linalg.norm(got.double().numpy() - ref) / np.linalg.norm(ref)
        assert rel < 0.08, rel


def test_ns5_is_roughly_orthogonal():
    G = torch.randn(32, 16, dtype=torch.float64)
    X = zeropower_via_newtonschulz5(G, dtype=torch.float64)
    sv = torch.linalg.svdvals(X)
    assert sv.min() > 0.5 and sv.max() < 1.3   # NS5's quintic lands singular values in ~[0.7, 1.2]


def test_muon_exact_path_matches_float64_reference():
    got, ref = _run_pair(torch.float64, torch.float64)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-12)


def test_muon_fp32_path_matches_reference():
    got, ref = _run_pair(torch.float32, torch.float32)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=0, atol=2e-5)


def test_muon_bf16_default_close_to_reference():
    got, ref, init = _run_pair(torch.float32, torch.bfloat16, with_init=True)
    for g, r, p0 in zip(got, ref, init):
        # the displacement after 4 steps, bf16 Newton-Schulz vs float64: a few percent
        rel = np.linalg.norm((g - p0) - (r - p0)) / np.linalg.norm(r - p0)
        assert rel < 0.08, rel


def test_muon_updates_pass_through_a_bf16_buffer():
    """With lr = 1 and fp64 params, every applied update is exactly a bf16 number."""
    p = torch.nn.Parameter(torch.zeros(8, 4, dtype=torch.float64))
    p.grad = torch.randn(8, 4, dtype=torch.float64)
    Muon([p], lr=1.0).step()
    upd = -p.detach()
    assert torch.equal(upd, upd.to(torch.bfloat16).double())
    assert upd.abs().max() > 0


def test_muon_without_nesterov():
    got, ref = _run_pair(torch.float64, torch.float64, nesterov=False)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-12)


def test_preconditioner_seam_and_weight_decay_match_reference():
    got, ref = _run_pair(torch.float64, torch.float64, row_normalize=True, weight_decay=0.085)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-12)


def test_variant_set_on_existing_optimizer():
    """A plugin turns a variant on by editing the core's Muon (a preconditioner, group options),
    without a copy of Muon."""
    rng = np.random.default_rng(5)
    init = [rng.standard_normal(s) for s in SHAPES]
    params = [torch.nn.Parameter(torch.tensor(x)) for x in init]
    opt = Muon(params, lr=0.02, momentum=0.99, ns_dtype=torch.float64)
    opt.preconditioners.append(_rows)
    for g in opt.param_groups:
        g["weight_decay"] = 0.1
    ref = RefMuon(init, row_normalize=True, weight_decay=0.1)
    grads = [rng.standard_normal(s) for s in SHAPES]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    opt.step()
    ref.step(grads, 0.02, 0.99)
    for p, r in zip(params, ref.p):
        np.testing.assert_allclose(p.detach().numpy(), r, atol=1e-12)


def test_muon_subclass_hooks_are_used():
    calls = []

    class Traced(Muon):
        def precondition(self, g, p, group):
            calls.append(tuple(p.shape))
            return super().precondition(g, p, group)

    p = torch.nn.Parameter(torch.randn(4, 6))
    p.grad = torch.randn(4, 6)
    Traced([p], lr=0.1).step()
    assert calls == [(4, 6)]


def test_muon_round_robin_skips_other_ranks_work():
    """Without a process group, rank 1 of 2 computes only odd-indexed updates (others stay 0)."""
    ps = [torch.nn.Parameter(torch.randn(4, 4, dtype=torch.float64)) for _ in range(3)]
    before = [p.detach().clone() for p in ps]
    for p in ps:
        p.grad = torch.randn(4, 4, dtype=torch.float64)
    opt = Muon(ps, lr=0.1, ns_dtype=torch.float64, rank=1, world_size=2)
    opt.step()
    assert torch.equal(ps[0], before[0]) and torch.equal(ps[2], before[2])
    assert not torch.equal(ps[1], before[1])
    assert "momentum_buffer" not in opt.state[ps[0]] and "momentum_buffer" in opt.state[ps[1]]


def test_muon_rejects_non_matrices():
    with pytest.raises(ValueError, match="2-D"):
        Muon([torch.nn.Parameter(torch.randn(5))], lr=0.1)


def test_muon_state_dict_roundtrip():
    p = torch.nn.Parameter(torch.randn(6, 4))
    p.grad = torch.randn(6, 4)
    opt = Muon([p], lr=0.1)
    opt.step()
    sd = opt.state_dict()
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = Muon([q], lr=0.1)
    opt2.load_state_dict(sd)
    assert torch.equal(opt2.state[q]["momentum_buffer"], opt.state[p]["momentum_buffer"])
