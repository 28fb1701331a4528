"""MuonEq-R against independent references: row norms, and full steps against a float64 NumPy loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from golf_core.api import Muon
from golf_muon_eq_r import (
    STEP_KEY,
    MuonEqR,
    configure_muon_eq_r,
    momentum_at,
    row_normalize,
)

SHAPES = [(8, 4), (4, 8), (6, 6)]


# ---- independent float64 reference (NumPy, written from research/pg_core.md §4.3, §5.4) ----

def ref_ns5(G: np.ndarray, steps: int = 5, eps: float = 1e-7) -> np.ndarray:
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G / (math.sqrt(float((G * G).sum())) + eps)
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * (A @ A)) @ X
    return X.T if tall else X


def ref_row_normalize(u: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    out = np.empty_like(u)
    for r in range(u.shape[0]):
        n = math.sqrt(sum(float(v) * float(v) for v in u[r]))
        out[r] = u[r] / max(n, eps)
    return out


def ref_run(w0, grads, lr_muls, *, base_lr, wd, m_start, m_end, m_steps, row_norm=True):
    """Every matrix's weights after each step, in float64."""
    ws = [w.copy() for w in w0]
    bufs = [np.zeros_like(w) for w in w0]
    history = []
    for t, (gs, mul) in enumerate(zip(grads, lr_muls)):
        f = min(t / m_steps, 1.0) if m_steps > 0 else 1.0
        mom = (1 - f) * m_start + f * m_end
        lr = base_lr * mul
        for i, g in enumerate(gs):
            bufs[i] = mom * bufs[i] + g
            u = g + mom * bufs[i]
            if row_norm:
                u = ref_row_normalize(u)
            x = ref_ns5(u) * math.sqrt(max(1.0, u.shape[0] / u.shape[1]))
            ws[i] = ws[i] * (1.0 - lr * wd) - lr * x
        history.append([w.copy() for w in ws])
    return history


def _problem(seed=0, steps=7, zero_row=True):
    rng = np.random.default_rng(seed)
    w0 = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    if zero_row:
        grads[0][0][2] = 0.0  # a zero row: momentum and update rows stay zero (clamp, no NaN)
    lr_muls = [1.0, 1.0, 0.9, 0.7, 0.5, 0.25, 0.0][:steps]
    return w0, grads, lr_muls


def _torch_run(opt_factory, w0, grads, lr_muls, base_lr):
    params = [torch.nn.Parameter(torch.tensor(w, dtype=torch.float64)) for w in w0]
    opt = opt_factory(params)
    out = []
    for gs, mul in zip(grads, lr_muls):
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g, dtype=torch.float64)
        for group in opt.param_groups:  # what a training loop does: scheduled lr, its own momentum
            group["lr"] = base_lr * mul
            group["momentum"] = 0.123
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return opt, params, out


# ---- row normalization -------------------------------------------------------------------

def test_row_norms_are_one_after_normalization():
    g = torch.randn(37, 19, dtype=torch.float64) * torch.logspace(-3, 3, 37, dtype=torch.float64)[:, None]
    u = row_normalize(g)
    norms = np.array([math.sqrt(sum(float(v) ** 2 for v in row)) for row in u.numpy()])
    np.testing.assert_allclose(norms, np.ones(37), rtol=0, atol=1e-12)
    np.testing.assert_allclose(u.numpy(), ref_row_normalize(g.numpy()), rtol=1e-14, atol=0)


def test_a_bf16_update_is_divided_in_bf16_by_its_float32_norm_rounded_to_bf16():
    """The banked Muon's bf16 update (#1530 ``Muon.step``): the norm in float32, cast to bf16,
    then a bf16 division (float64 NumPy reference with bf16 rounding of norm and quotient)."""
    g = (torch.randn(9, 40, generator=torch.Generator().manual_seed(2)) * 3).bfloat16()
    u = row_normalize(g)
    assert u.dtype == torch.bfloat16
    gd = g.double().numpy()
    norm = torch.tensor(np.sqrt((gd ** 2).sum(axis=1, keepdims=True)), dtype=torch.float32).bfloat16().double().numpy()
    want = torch.tensor(gd / norm).bfloat16()
    assert torch.equal(u, want)


def test_row_norm_floor_is_1e_minus_7():
    g = torch.zeros(3, 4, dtype=torch.float64)
    g[1, 0] = 1e-9  # norm below the floor: divided by 1e-7, not scaled up to 1
    g[2] = torch.tensor([3.0, 4.0, 0.0, 0.0], dtype=torch.float64)
    u = row_normalize(g)
    assert torch.equal(u[0], torch.zeros(4, dtype=torch.float64))
    assert float(u[1, 0]) == pytest.approx(1e-2, rel=1e-9)
    np.testing.assert_allclose(u[2].numpy(), [0.6, 0.8, 0.0, 0.0], atol=1e-15)


def test_newton_schulz_sees_unit_rows():
    seen = []

    class Spy(MuonEqR):
        def orthogonalize(self, g, group):
            seen.append(g.detach().clone())
            return super().orthogonalize(g, group)

    p = torch.nn.Parameter(torch.randn(5, 3, dtype=torch.float64))
    p.grad = torch.randn(5, 3, dtype=torch.float64) * 100.0
    Spy([p], lr=0.02, ns_dtype=torch.float64).step()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0].norm(dim=1).numpy(), np.ones(5), atol=1e-12)


# ---- the full step against the float64 reference ---------------------------------------------

@pytest.mark.parametrize("row_norm", [True, False])
def test_full_steps_match_float64_reference(row_norm):
    w0, grads, lr_muls = _problem()
    base_lr, wd = 0.02, 0.085
    ref = ref_run(w0, grads, lr_muls, base_lr=base_lr, wd=wd, m_start=0.92, m_end=0.99, m_steps=3, row_norm=row_norm)
    _, _, got = _torch_run(
        lambda ps: MuonEqR(ps, lr=base_lr, weight_decay=wd, row_normalize=row_norm,
                           momentum_warmup_steps=3, ns_dtype=torch.float64),
        w0, grads, lr_muls, base_lr)
    for t, (r_ws, g_ws) in enumerate(zip(ref, got)):
        for r, g in zip(r_ws, g_ws):
            np.testing.assert_allclose(g, r, rtol=0, atol=1e-12, err_msg=f"step {t + 1}")
    assert np.all(np.isfinite(got[-1][0]))


def test_configured_core_muon_matches_reference():
    """configure_muon_eq_r on a plain core Muon gives the same steps as the reference."""
    w0, grads, lr_muls = _problem(seed=3)
    base_lr, wd = 0.04, 0.05
    ref = ref_run(w0, grads, lr_muls, base_lr=base_lr, wd=wd, m_start=0.85, m_end=0.95, m_steps=4)

    def factory(ps):
        m = Muon(ps, lr=base_lr, momentum=0.5, ns_dtype=torch.float64)
        configure_muon_eq_r(m, weight_decay=wd, momentum=0.95, momentum_warmup_start=0.85, momentum_warmup_steps=4)
        return m

    _, _, got = _torch_run(factory, w0, grads, lr_muls, base_lr)
    for r, g in zip(ref[-1], got[-1]):
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-12)


def test_bf16_newton_schulz_stays_close_to_reference():
    """The record's bf16 Newton-Schulz: same direction as the float64 update, to bf16 accuracy."""
    w0, grads, lr_muls = _problem(seed=5, steps=3, zero_row=False)
    ref = ref_run(w0, grads, lr_muls, base_lr=0.02, wd=0.085, m_start=0.92, m_end=0.99, m_steps=1500)
    _, _, got = _torch_run(lambda ps: MuonEqR(ps, lr=0.02), w0, grads, lr_muls, 0.02)
    for r, g, w in zip(ref[-1], got[-1], w0):
        dr, dg = (r - w).ravel(), (g - w).ravel()
        cos = float(dr @ dg / (np.linalg.norm(dr) * np.linalg.norm(dg)))
        assert cos > 0.999


# ---- momentum schedule -----------------------------------------------------------------------

def test_momentum_schedule_values_and_loop_override():
    p = torch.nn.Parameter(torch.randn(4, 4))
    opt = MuonEqR([p], lr=0.02, ns_dtype=torch.float32)
    got = []
    for _ in range(5):
        p.grad = torch.randn(4, 4)
        opt.param_groups[0]["momentum"] = 0.5  # a loop's own setting is replaced inside step()
        opt.step()
        got.append(opt.param_groups[0]["momentum"])
    want = [(1 - t / 1500) * 0.92 + (t / 1500) * 0.99 for t in range(5)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    assert opt.param_groups[0][STEP_KEY] == 5
    assert momentum_at(0) == 0.92 and momentum_at(1500) == pytest.approx(0.99) and momentum_at(10**6) == pytest.approx(0.99)
    assert momentum_at(750) == pytest.approx(0.955)
    assert momentum_at(3, steps=0) == pytest.approx(0.99)


def test_state_dict_resumes_schedule_and_buffers():
    w0, grads, lr_muls = _problem(seed=7)

    def factory(ps):
        return MuonEqR(ps, lr=0.02, momentum_warmup_steps=4, ns_dtype=torch.float64)

    _, _, full = _torch_run(factory, w0, grads, lr_muls, 0.02)
    # interrupted after 3 steps: a fresh optimizer loads the state and continues
    opt, params, first = _torch_run(factory, w0, grads[:3], lr_muls[:3], 0.02)
    state = opt.state_dict()
    params2 = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt2 = factory(params2)
    opt2.load_state_dict(state)
    assert opt2.param_groups[0][STEP_KEY] == 3
    for gs, mul in zip(grads[3:], lr_muls[3:]):
        for p, g in zip(params2, gs):
            p.grad = torch.tensor(g, dtype=torch.float64)
        for group in opt2.param_groups:
            group["lr"] = 0.02 * mul
        opt2.step()
    for a, b in zip(full[-1], [p.detach().numpy() for p in params2]):
        np.testing.assert_array_equal(a, b)


def test_reattaching_keeps_a_single_schedule():
    p = torch.nn.Parameter(torch.randn(3, 3))
    m = Muon([p], lr=0.01, ns_dtype=torch.float32)
    configure_muon_eq_r(m)
    configure_muon_eq_r(m, momentum_warmup_steps=10)
    p.grad = torch.randn(3, 3)
    m.step()
    assert m.param_groups[0][STEP_KEY] == 1  # counted once, not twice


# ---- the plugin on a real OptimizerSet ------------------------------------------------------

def test_plugin_configures_the_core_optimizer_set():
    from golf_core.config import ModelSection, TrainSection
    from golf_core.model import GPT, GPTConfig
    from golf_core.plugins import PluginRegistry, activate
    from golf_core.recipe import Recipe
    from golf_core.train.optim import build_optimizers
    import golf_muon_eq_r.plugin as plugin_module

    reg = PluginRegistry()
    reg.add("muon-eq-r", plugin_module)
    recipe = Recipe(plugins=["muon-eq-r"], options={"muon-eq-r": {"weight_decay": 0.07}},
                    train=TrainSection(adam_wd=0.02, embed_wd=0.085, matrix_lr=0.02))
    ap = activate(recipe, reg)
    model = GPT(GPTConfig.from_section(ModelSection(num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1), 64))
    opts = build_optimizers(model, recipe.train)
    out = ap.transform("golf_configure_optimizers", "optimizers", opts, model=model, ctx=None)
    assert out is opts
    muon = opts["muon"]
    assert all(g["row_normalize"] is True and g["weight_decay"] == 0.07 and g["base_lr"] == 0.02 for g in muon.param_groups)
    assert muon.param_groups[0]["momentum"] == pytest.approx(0.92)
    # the Adam groups keep the recipe's [train] decoupled decays
    assert opts["embed"].param_groups[0]["weight_decay"] == 0.085
    assert opts["scalar"].param_groups[0]["weight_decay"] == 0.02
    opts.check_covers(model)
    # one real step through the OptimizerSet, with the loop's own momentum setting overridden
    loss = model(torch.randint(0, 64, (2, 8)), torch.randint(0, 64, (2, 8)))
    loss.backward()
    opts.set_muon_momentum(0.5)
    opts.step()
    assert muon.param_groups[0][STEP_KEY] == 1
    assert muon.param_groups[0]["momentum"] == pytest.approx(0.92)


def test_options_reject_bad_values():
    from pydantic import ValidationError

    from golf_muon_eq_r.plugin import MuonEqROptions

    assert MuonEqROptions().model_dump() == {
        "row_normalize": True, "weight_decay": 0.085, "momentum": 0.99,
        "momentum_warmup_start": 0.92, "momentum_warmup_steps": 1500,
    }
    with pytest.raises(ValidationError):
        MuonEqROptions(momentum=1.2)
    with pytest.raises(ValidationError):
        MuonEqROptions(wd=0.1)
