"""Attention kernels against a brute-force float64 softmax loop, and backend selection (issue 11)."""
import math
import sys
import types

import pytest
import torch

from golf_core.errors import GolfError, RecipeError
from golf_core.model import GPT, GPTConfig, causal_attention, prepare_for_device, resolve_backend
from golf_core.model import attention as attn_mod


def brute_force(q, k, v):
    """Causal softmax attention, one (batch, head, position) at a time; head h reads KV head h // (H/Hkv)."""
    q, k, v = q.detach(), k.detach(), v.detach()
    B, T, H, D = q.shape
    group = H // k.shape[2]
    out = torch.zeros(B, T, H, D, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            g = h // group
            for t in range(T):
                scores = [float(q[b, t, h].double() @ k[b, u, g].double()) / math.sqrt(D) for u in range(t + 1)]
                m = max(scores)
                w = [math.exp(s - m) for s in scores]
                z = sum(w)
                for u in range(t + 1):
                    out[b, t, h] += (w[u] / z) * v[b, u, g].double()
    return out


def qkv(H, Hkv, B=2, T=7, D=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, T, H, D, generator=g, dtype=torch.float64) * 2,
            torch.randn(B, T, Hkv, D, generator=g, dtype=torch.float64) * 2,
            torch.randn(B, T, Hkv, D, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("H,Hkv", [(4, 4), (4, 2), (4, 1)])
@pytest.mark.parametrize("native_gqa", [True, False])
def test_sdpa_matches_brute_force(H, Hkv, native_gqa, monkeypatch):
    monkeypatch.setattr(attn_mod, "_SDPA_HAS_GQA", native_gqa)
    q, k, v = qkv(H, Hkv)
    y = causal_attention(q, k, v, "sdpa")
    assert y.shape == q.shape
    torch.testing.assert_close(y, brute_force(q, k, v), rtol=0, atol=1e-12)


def test_sdpa_float32_close_to_brute_force():
    q, k, v = qkv(8, 4, T=9)
    y = causal_attention(q.float(), k.float(), v.float(), "sdpa")
    torch.testing.assert_close(y.double(), brute_force(q, k, v), rtol=0, atol=1e-5)


# ---- backend selection ---------------------------------------------------------------------

def fake_flash(return_tuple):
    mod = types.ModuleType("fake_flash")
    calls = []

    def flash_attn_func(q, k, v, causal=False):
        assert causal is True
        calls.append(q.shape)
        out = brute_force(q, k, v).to(q.dtype)
        return (out, torch.zeros(1)) if return_tuple else out

    mod.flash_attn_func = flash_attn_func
    mod.calls = calls
    return mod


@pytest.fixture
def no_flash(monkeypatch):
    """Neither FlashAttention package importable; fresh import cache."""
    monkeypatch.setattr(attn_mod, "_flash_funcs", {})
    monkeypatch.setitem(sys.modules, "flash_attn_interface", None)
    monkeypatch.setitem(sys.modules, "flash_attn", None)
    return monkeypatch


CUDA = torch.device("cuda")


def test_auto_is_sdpa_off_cuda_or_in_fp32(no_flash):
    no_flash.setitem(sys.modules, "flash_attn_interface", fake_flash(False))
    assert resolve_backend("auto", torch.device("cpu"), torch.bfloat16) == "sdpa"
    assert resolve_backend("auto", CUDA, torch.float32) == "sdpa"
    assert resolve_backend("sdpa", CUDA, torch.bfloat16) == "sdpa"


def test_auto_prefers_flash3_then_flash2(no_flash):
    assert resolve_backend("auto", CUDA, torch.bfloat16) == "sdpa"
    no_flash.setitem(sys.modules, "flash_attn", fake_flash(False))
    assert resolve_backend("auto", CUDA, torch.bfloat16) == "flash2"
    no_flash.setitem(sys.modules, "flash_attn_interface", fake_flash(True))
    assert resolve_backend("auto", CUDA, torch.bfloat16) == "flash3"


@pytest.mark.parametrize("name,module", [("flash3", "flash_attn_interface"), ("flash2", "flash_attn")])
@pytest.mark.parametrize("return_tuple", [True, False])
def test_flash_kernels_unwrap_and_keep_layout(no_flash, name, module, return_tuple):
    fake = fake_flash(return_tuple)
    no_flash.setitem(sys.modules, module, fake)
    assert resolve_backend(name, CUDA, torch.bfloat16) == name
    q, k, v = qkv(4, 2)
    y = causal_attention(q, k, v, name)
    assert isinstance(y, torch.Tensor) and fake.calls == [q.shape]  # [B,T,H,D] handed over as is
    torch.testing.assert_close(y, brute_force(q, k, v), rtol=0, atol=1e-12)


def one_line_error(requested, device, dtype):
    with pytest.raises(RecipeError) as e:
        resolve_backend(requested, device, dtype)
    msg = str(e.value)
    assert "\n" not in msg and "attention_backend" in msg and requested in msg
    return msg


def test_forced_backend_unavailable_is_one_line_error(no_flash):
    assert "CUDA" in one_line_error("flash3", torch.device("cpu"), torch.bfloat16)
    assert "flash_attn_interface" in one_line_error("flash3", CUDA, torch.bfloat16)
    assert "flash_attn" in one_line_error("flash2", CUDA, torch.bfloat16)
    no_flash.setitem(sys.modules, "flash_attn_interface", fake_flash(False))
    assert "bf16" in one_line_error("flash3", CUDA, torch.float32)
    assert issubclass(RecipeError, GolfError)


def test_prepare_records_backend_and_refuses_forced_flash_on_cpu(no_flash):
    model = GPT(GPTConfig(vocab_size=16, num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1))
    prepare_for_device(model, "cpu")
    assert model.attention_backend == "sdpa"
    assert all(b.attn.backend == "sdpa" for b in model.blocks)
    with pytest.raises(RecipeError):
        prepare_for_device(model, "cpu", attention_backend="flash2")
    forced = GPT(GPTConfig(vocab_size=16, num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1,
                           attention_backend="flash3"))
    with pytest.raises(RecipeError):
        prepare_for_device(forced, "cpu")


def test_set_attention_backend_reaches_every_block(no_flash):
    no_flash.setitem(sys.modules, "flash_attn", fake_flash(False))
    resolve_backend("flash2", CUDA, torch.bfloat16)
    model = GPT(GPTConfig(vocab_size=16, num_layers=3, model_dim=16, num_heads=2, num_kv_heads=1)).double()
    for b in model.blocks:
        torch.nn.init.normal_(b.attn.proj.weight, std=0.3)  # zero-init would hide the attention output
    x = torch.randint(0, 16, (1, 5))
    ref = model.forward_logits(x)
    model.set_attention_backend("flash2")
    assert model.attention_backend == "flash2" and {b.attn.backend for b in model.blocks} == {"flash2"}
    torch.testing.assert_close(model.forward_logits(x), ref, rtol=0, atol=1e-12)
    assert len(sys.modules["flash_attn"].calls) == 3
