"""The fused kernels' plain-PyTorch maths against independent float64 references, their ops under
fullgraph compile, and golf's Triton kernels against that maths (GPU; or Triton's interpreter)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from golf_core.model import GPT, GPTConfig
from golf_core.model.fused import fused_kernel_check, triton_unavailable
from golf_core.model.softcap_ce import (softcap_ce_backward, softcap_ce_forward, softcap_ce_op,
                                        softcapped_cross_entropy)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
CUDA_REASON = triton_unavailable("cuda")


def _ce64(x, t, c):
    """Float64 CE of c*tanh(x/c) by hand: log-sum-exp minus the target's capped logit, per row."""
    z = c * torch.tanh(x.double() / c)
    return torch.log(torch.exp(z - z.max(1, keepdim=True).values).sum(1)) + z.max(1).values - z[torch.arange(len(t)), t]


def test_softcap_ce_maths_equals_float64_tanh_ce():
    """z = 2c*sigmoid(2x/c) is c*tanh(x/c) shifted by c: the same per-row loss; and the explicit
    gradient equals float64 autograd of the tanh form."""
    g = torch.Generator().manual_seed(0)
    x = 25 * torch.randn(7, 50, generator=g)
    t = torch.randint(0, 50, (7,), generator=g)
    gl = torch.rand(7, generator=g)
    losses, lse = softcap_ce_forward(x, t, 30.0)
    torch.testing.assert_close(losses.double(), _ce64(x, t, 30.0), rtol=0, atol=2e-5)
    x64 = x.double().requires_grad_()
    (_ce64(x64, t, 30.0) * gl.double()).sum().backward()
    torch.testing.assert_close(softcap_ce_backward(x, t, lse, gl, 30.0).double(), x64.grad, rtol=0, atol=1e-6)


def test_softcap_ce_op_autograd_and_mean():
    """The op's registered backward gives float64 autograd's gradient of the mean loss; the
    unfused path is the baseline's F.cross_entropy."""
    g = torch.Generator().manual_seed(1)
    x = (10 * torch.randn(5, 33, generator=g)).requires_grad_()
    t = torch.randint(0, 33, (5,), generator=g)
    loss = softcapped_cross_entropy(x, t, 30.0, fused=True)
    loss.backward()
    x64 = x.detach().double().requires_grad_()
    ref = _ce64(x64, t, 30.0).mean()
    ref.backward()
    assert abs(loss.item() - ref.item()) < 1e-5
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=0, atol=1e-6)
    plain = softcapped_cross_entropy(x.detach(), t, 30.0)
    assert plain.item() == pytest.approx(F.cross_entropy(30 * torch.tanh(x.detach() / 30), t).item(), abs=0)
    torch.library.opcheck(softcap_ce_op, (x.detach(), t, 30.0))


def test_gpt_fused_ce_path_traces_fullgraph_and_matches():
    """With ``fused_ce`` on, a training forward+backward through the op (its CPU implementation is
    the reference) compiles as one graph under AOT autograd and matches the plain loss."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1))
    with torch.no_grad():
        model.tok_emb.weight.normal_(std=3.0)
    x, y = torch.randint(0, 40, (2, 8)), torch.randint(0, 40, (2, 8))
    plain = model(x, y)
    model.fused_ce = True
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, dynamic=False, backend="aot_eager")
    loss = compiled(x, y)
    loss.backward()
    torch._dynamo.reset()
    assert abs(loss.item() - plain.item()) < 1e-5
    assert model.tok_emb.weight.grad is not None and model.tok_emb.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert model(x, y).item() == plain.item()  # evaluation keeps the plain path


def test_kernel_decision_off_cpu_and_setting():
    """Off CUDA, and under ``fused_kernels = "off"``, the fused kernels are never used (no probe)."""
    def probe(device):
        raise AssertionError("the probe must not run")

    cpu = fused_kernel_check("test-kernel", "cpu", probe, 1e-3)
    assert not cpu.used and "CUDA only" in cpu.reason
    off = fused_kernel_check("test-kernel", "cuda", probe, 1e-3, setting="off")
    assert not off.used and "off" in off.reason


def test_kernel_decision_rejects_a_probe_that_differs(monkeypatch):
    """A probe above tolerance, or one that raises, leaves the reference path in place."""
    from golf_core.model import fused

    monkeypatch.setattr(fused, "triton_unavailable", lambda device: None)
    monkeypatch.setattr(fused, "_CHECKS", {})
    bad = fused.fused_kernel_check("k", "cuda:0", lambda d: 0.5, 1e-2)
    assert not bad.used and "exceeds the tolerance" in bad.reason and bad.max_abs_diff == 0.5
    boom = fused.fused_kernel_check("k2", "cuda:0", lambda d: 1 / 0, 1e-2)
    assert not boom.used and "ZeroDivisionError" in boom.reason
    good = fused.fused_kernel_check("k3", "cuda:0", lambda d: 1e-4, 1e-2)
    assert good.used and fused.fused_kernel_check("k3", "cuda:0", lambda d: 1.0, 1e-2) is good  # cached


@pytest.mark.skipif(CUDA_REASON is not None, reason=f"Triton kernels need a CUDA GPU with triton: {CUDA_REASON}")
def test_triton_softcap_ce_equals_reference_on_gpu():
    """golf's Triton CE kernels against the plain-PyTorch maths (bf16 and fp32 logits, V=8192)."""
    from golf_core.model import triton_softcap_ce as K

    for dtype, tol in ((torch.bfloat16, 1e-2), (torch.float32, 1e-5)):
        res = K.compare_with_reference("cuda", rows=257, vocab=8192, dtype=dtype)
        assert max(v["rel"] for v in res.values()) < tol, res


_INTERPRET = """
import os, sys, torch
os.environ["TRITON_INTERPRET"] = "1"
from golf_core.model import triton_softcap_ce as K
r = K.compare_with_reference("cpu", rows=6, vocab=1100, dtype=torch.float32)
assert max(v["rel"] for v in r.values()) < 1e-5, r
r = K.compare_with_reference("cpu", rows=6, vocab=1100, dtype=torch.bfloat16)
assert max(v["rel"] for v in r.values()) < 1e-2, r
print("ok")
"""


def test_triton_softcap_ce_under_the_interpreter(triton_interpreted):
    """The same kernels on CPU through Triton's interpreter (TRITON_INTERPRET=1), where Triton is installed."""
    triton_interpreted(_INTERPRET)
