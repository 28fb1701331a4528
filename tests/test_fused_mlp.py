"""The fused squared-(leaky-)ReLU MLP's maths against float64 autograd, its op under fullgraph AOT compile,
the plugin's CPU behaviour (plain path), and golf's Triton kernel against the maths (GPU, or
Triton's CPU interpreter where triton is installed)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from golf_core.model.fused import triton_unavailable
from golf_core.model.fused_mlp import FusedSquaredReLUMLP, mlp_backward, mlp_forward, mlp_op

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
CUDA_REASON = triton_unavailable("cuda")


def _mlp64(x, w1, w2, s):
    """The MLP in float64 from its definition: proj(leaky_relu(fc(x), s)**2)."""
    pre = x @ w1.t()
    act = torch.where(pre > 0, pre, s * pre) ** 2
    return act @ w2.t()


@pytest.mark.parametrize("slope", [0.5, 0.0, 0.3])
def test_mlp_maths_equals_float64_autograd(slope):
    """out and the explicit (dx, dw1, dw2) of the fused maths equal float64 autograd."""
    g = torch.Generator().manual_seed(0)
    x, w1, w2, go = (torch.randn(*s, generator=g) for s in ((9, 6), (20, 6), (6, 20), (9, 6)))
    out, pre, post = mlp_forward(x, w1, w2, slope)
    dx, dw1, dw2 = mlp_backward(go, x, w1, w2, pre, post, slope)
    leaves = [t.double().requires_grad_() for t in (x, w1, w2)]
    ref = _mlp64(*leaves, slope)
    (ref * go.double()).sum().backward()
    torch.testing.assert_close(out.double(), ref.detach(), rtol=1e-5, atol=1e-5)
    for got, leaf in zip((dx, dw1, dw2), leaves):
        torch.testing.assert_close(got.double(), leaf.grad, rtol=1e-5, atol=1e-4)


def test_fused_module_autograd_and_fullgraph():
    """FusedSquaredReLUMLP (op + registered backward) compiles as one AOT graph and gives the plain
    module's output and gradients; torch.library.opcheck accepts the op."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 8, generator=g, requires_grad=True)
    w1 = torch.randn(16, 8, generator=g, requires_grad=True)
    w2 = torch.randn(8, 16, generator=g, requires_grad=True)
    torch._dynamo.reset()
    fused = torch.compile(FusedSquaredReLUMLP(0.5), fullgraph=True, backend="aot_eager")
    out = fused(x, w1, w2)
    out.square().sum().backward()
    grads = [t.grad.clone() for t in (x, w1, w2)]
    for t in (x, w1, w2):
        t.grad = None
    plain = F.linear(F.leaky_relu(F.linear(x, w1), 0.5).square(), w2)
    plain.square().sum().backward()
    torch._dynamo.reset()
    torch.testing.assert_close(out, plain)
    for a, t in zip(grads, (x, w1, w2)):
        torch.testing.assert_close(a, t.grad, rtol=1e-5, atol=1e-5)
    torch.library.opcheck(mlp_op, (x.detach().reshape(-1, 8), w1.detach(), w2.detach(), 0.5))


def test_leaky_relu_sq_plugin_leaves_cpu_models_on_the_plain_path():
    """On CPU the plugin installs no fused MLP (Triton kernels are CUDA-only)."""
    from golf_core.context import RunContext
    from golf_core.run.build import build_model
    from golf_core.plugins import activate
    from golf_core.recipe import load_recipe_text

    recipe = load_recipe_text('plugins = ["leaky-relu-sq"]\n[data]\nvocab_size = 64\n'
                              '[model]\nnum_layers = 2\nmodel_dim = 32\nnum_heads = 4\nnum_kv_heads = 2\n')
    ap = activate(recipe)
    model = build_model(recipe, ap, RunContext(recipe=recipe, plugins=ap))
    assert all(b.mlp.fused is None for b in model.blocks)


@pytest.mark.skipif(CUDA_REASON is not None, reason=f"Triton kernels need a CUDA GPU with triton: {CUDA_REASON}")
def test_triton_mlp_equals_reference_on_gpu():
    """golf's Triton MLP kernel against the plain maths: #1394's shape in bf16 and a ragged one in fp32."""
    from golf_core.model import triton_mlp as K

    res = K.compare_with_reference("cuda", m=4096, d=512, h=2048, dtype=torch.bfloat16)
    assert max(v["rel"] for v in res.values()) < 3e-2, res
    res = K.compare_with_reference("cuda", m=300, d=72, h=200, dtype=torch.float32)
    assert max(v["rel"] for v in res.values()) < 1e-5, res


_INTERPRET = """
import os, torch
from golf_core.model import triton_mlp as K
r = K.compare_with_reference("cpu", m=40, d=48, h=80, dtype=torch.float32, blocks=(16, 32, 16))
assert max(v["rel"] for v in r.values()) < 1e-5, r
r = K.compare_with_reference("cpu", m=40, d=48, h=80, dtype=torch.bfloat16, blocks=(16, 32, 16))
assert max(v["rel"] for v in r.values()) < 3e-2, r
print("ok")
"""


def test_triton_mlp_under_the_interpreter(triton_interpreted):
    """The kernel on CPU through Triton's interpreter (TRITON_INTERPRET=1), sizes not multiples of the tiles."""
    triton_interpreted(_INTERPRET)
