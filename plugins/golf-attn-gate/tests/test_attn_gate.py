"""attn-gate: each form against a per-head float64 loop, init values, names, exclusivity, contract."""
import math

import pytest
import torch
from pydantic import ValidationError

from golf_core import GolfError
from golf_core.model import GPT, GPTConfig, count_parameters
from golf_core.testkit import plugin_problems
from golf_core.train.optim import route_parameters
from golf_attn_gate import DenseGate, OutputGate, SparseGate, install_attn_gate
from golf_attn_gate import plugin

B, T, H, Dh, DIM = 2, 5, 4, 3, 12


def sig(z):
    return 1.0 / (1.0 + math.exp(-z))


def loop(y, src, W, fn, window):
    """y[b,t,h,:] * fn(sum_k W[h,k] src[b,t,k]) for k < window, one scalar at a time."""
    out = y.clone()
    for b in range(B):
        for t in range(T):
            for h in range(H):
                z = sum(float(W[h, k]) * float(src[b, t, k]) for k in range(window))
                out[b, t, h] = y[b, t, h] * fn(z)
    return out


def data():
    torch.manual_seed(0)
    return (torch.randn(B, T, H, Dh, dtype=torch.float64), torch.randn(B, T, DIM, dtype=torch.float64),
            torch.randn(B, T, DIM, dtype=torch.float64))


@pytest.mark.parametrize("src", ["proj", "q"])
def test_output_gate(src):
    y, x, q = data()
    g = OutputGate(H, window=5, src=src).double()
    torch.testing.assert_close(g(y, x, q), y, rtol=0, atol=0)  # zero init: 2*sigmoid(0) = 1
    with torch.no_grad():
        g.attn_gate_proj.weight.normal_()
    ref = loop(y, q if src == "q" else x, g.attn_gate_proj.weight, lambda z: 2 * sig(z), 5)
    torch.testing.assert_close(g(y, x, q), ref, rtol=1e-12, atol=1e-12)


def test_dense_gate():
    y, x, q = data()
    torch.manual_seed(3)
    g = DenseGate(H, DIM, init_std=0.005).double()
    assert 0.0 < g.attn_gate_w.std().item() < 0.02
    with torch.no_grad():
        g.attn_gate_w.normal_()
    torch.testing.assert_close(g(y, x, q), loop(y, x, g.attn_gate_w, sig, DIM), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_sparse_gate(scale):
    y, x, q = data()
    g = SparseGate(H, window=7, scale=scale).double()
    torch.testing.assert_close(g(y, x, q), 0.5 * y, rtol=0, atol=0)  # zero init: g = 0.5
    with torch.no_grad():
        g.attn_gate_w.normal_()
    ref = loop(y, x, g.attn_gate_w, lambda z: sig(scale * z), 7)
    torch.testing.assert_close(g(y, x, q), ref, rtol=1e-12, atol=1e-12)


def make_model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=32, num_layers=3, model_dim=16, num_heads=2, num_kv_heads=1))


@pytest.mark.parametrize("mode,per_block", [("output", 2 * 12), ("dense", 2 * 16), ("sparse", 2 * 12)])
def test_install_counts_names_and_forward(mode, per_block):
    m = make_model()
    base = count_parameters(m)
    ids = torch.randint(0, 32, (1, 6))
    with torch.no_grad():
        for b in m.blocks:
            b.attn.proj.weight.normal_(0, 0.3)
        before = m.forward_logits(ids)
    install_attn_gate(m, mode, init_std=0.005 if mode == "dense" else 0.0)
    assert count_parameters(m) == base + 3 * per_block
    name = "attn_gate_proj.weight" if mode == "output" else "attn_gate_w"
    scalar = {n for n, _ in route_parameters(m)["scalar"]}
    assert f"blocks.0.attn.out_gate.{name}" in scalar
    with torch.no_grad():
        after = m.forward_logits(ids)
    if mode == "output":
        torch.testing.assert_close(after, before, rtol=0, atol=0)  # transparent at init
    else:
        assert not torch.allclose(after, before)  # g ~ 0.5 halves every head


def test_bad_options_and_contract():
    with pytest.raises(ValidationError, match="init_std > 0"):
        plugin.AttnGateOptions(mode="dense")
    with pytest.raises(GolfError, match="window = 99"):
        install_attn_gate(make_model(), "sparse", window=99)
    assert plugin_problems("attn-gate") == []
