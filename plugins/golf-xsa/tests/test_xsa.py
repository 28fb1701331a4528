"""xsa: outputs orthogonal to the own position's normalized value, right grouping, right layers."""
import math

import pytest
import torch

from golf_core.model import GPT, GPTConfig, IdentityOutput
from golf_xsa import ExclusiveSelfAttention, exclusive_self_attention, install_xsa, xsa_layers
from golf_xsa import plugin


def reference_xsa(y, v):
    """Float64 loops: y[b,t,h] - (y.vn) vn with vn = v[b,t,h // (H // Hkv)] / |.|."""
    B, T, H, D = y.shape
    hkv = v.shape[2]
    out = torch.empty_like(y, dtype=torch.float64)
    for b in range(B):
        for t in range(T):
            for h in range(H):
                vv = [float(x) for x in v[b, t, h // (H // hkv)]]
                n = math.sqrt(sum(x * x for x in vv))
                vn = [x / n for x in vv]
                yy = [float(x) for x in y[b, t, h]]
                dot = sum(a * c for a, c in zip(yy, vn))
                out[b, t, h] = torch.tensor([a - dot * c for a, c in zip(yy, vn)], dtype=torch.float64)
    return out


@pytest.mark.parametrize("H,Hkv", [(4, 2), (8, 4), (4, 4), (4, 1)])
def test_matches_float64_reference_and_is_orthogonal(H, Hkv):
    g = torch.Generator().manual_seed(H * 10 + Hkv)
    y = torch.randn(2, 5, H, 6, generator=g)
    v = torch.randn(2, 5, Hkv, 6, generator=g)
    out = exclusive_self_attention(y, v)
    ref = reference_xsa(y, v)
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)
    out64 = out.double()
    for h in range(H):
        vg = v[:, :, h // (H // Hkv)].double()
        vn = vg / vg.norm(dim=-1, keepdim=True)
        cos = (out64[:, :, h] * vn).sum(-1) / out64[:, :, h].norm(dim=-1)
        assert cos.abs().max() < 1e-5
        # and the removed part is parallel to vn: y - out = (y.vn) vn
        diff = y[:, :, h].double() - out64[:, :, h]
        torch.testing.assert_close(diff, (y[:, :, h].double() * vn).sum(-1, keepdim=True) * vn, atol=1e-5, rtol=1e-5)


def test_other_groups_values_are_not_removed():
    """Head 0 (group 0) keeps its component along group 1's value."""
    y = torch.zeros(1, 1, 4, 3, dtype=torch.float64)
    v = torch.zeros(1, 1, 2, 3, dtype=torch.float64)
    v[0, 0, 0] = torch.tensor([1.0, 0, 0])
    v[0, 0, 1] = torch.tensor([0, 1.0, 0])
    y[0, 0, :] = torch.tensor([1.0, 1.0, 1.0])
    out = exclusive_self_attention(y, v)
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0, 1.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(out[0, 0, 1], torch.tensor([0, 1.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(out[0, 0, 2], torch.tensor([1.0, 0, 1.0], dtype=torch.float64))


def make_model(layers=11):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=64, num_layers=layers, model_dim=32, num_heads=4, num_kv_heads=2))


def test_layers_and_install():
    assert xsa_layers(11, 11) == list(range(11))
    assert xsa_layers(11, 4) == [7, 8, 9, 10]
    assert xsa_layers(5, 11) == list(range(5))
    model = make_model()
    assert install_xsa(model, 4) == [7, 8, 9, 10]
    kinds = [type(b.attn.out_transform) for b in model.blocks]
    assert kinds == [IdentityOutput] * 7 + [ExclusiveSelfAttention] * 4
    assert plugin.XSAOptions().last_n == 11


def test_in_model_attention_output_is_orthogonal():
    """Hook the seam inside a real forward: its output is orthogonal to the block's own values."""
    model = make_model(2)
    plugin.golf_build_model(model, plugin.XSAOptions())
    seen = []
    model.blocks[1].attn.out_transform.register_forward_hook(lambda m, args, out: seen.append((args[1], out)))
    with torch.no_grad():
        model.forward_logits(torch.randint(0, 64, (2, 9)))
    v, out = seen[0]
    for h in range(4):
        vn = torch.nn.functional.normalize(v[:, :, h // 2].double(), dim=-1)
        assert (out[:, :, h].double() * vn).sum(-1).abs().max() < 1e-5
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in make_model(2).parameters())
