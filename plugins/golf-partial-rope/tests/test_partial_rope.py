"""partial-rope: only the first rope_dims dims rotate, exactly as an independent rotation."""
import math

import pytest
import torch

from golf_core.errors import GolfError
from golf_core.model import GPT, GPTConfig
from golf_core.recipe import load_recipe_text
from golf_partial_rope import install_partial_rope, scaled_rope_dims
from golf_partial_rope import plugin


def reference_rotate(x, rope_dims, base=10000.0):
    """Float64 loops: pair (j, j + half) of the first rope_dims dims turns by t * base^(-2j/rope_dims)."""
    B, T, H, D = x.shape
    half = rope_dims // 2
    out = x.clone().double()
    for t in range(T):
        for j in range(half):
            ang = t * base ** (-2.0 * j / rope_dims)
            c, s = math.cos(ang), math.sin(ang)
            a = x[:, t, :, j].double()
            b = x[:, t, :, j + half].double()
            out[:, t, :, j] = a * c + b * s
            out[:, t, :, j + half] = -a * s + b * c
    return out


def make_model(dim=64, heads=4):
    return GPT(GPTConfig(vocab_size=64, num_layers=3, model_dim=dim, num_heads=heads, num_kv_heads=2))


@pytest.mark.parametrize("rope_dims", [4, 8, 16])
def test_rotation_matches_reference(rope_dims):
    model = make_model()  # head_dim 16
    assert install_partial_rope(model, rope_dims) == 3
    rot = model.blocks[2].attn.rotary
    assert rot.rope_dims == rope_dims
    g = torch.Generator().manual_seed(rope_dims)
    q = torch.randn(2, 11, 4, 16, generator=g)
    k = torch.randn(2, 11, 2, 16, generator=g)
    qo, ko = rot(q, k)
    torch.testing.assert_close(qo.double(), reference_rotate(q, rope_dims), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ko.double(), reference_rotate(k, rope_dims), atol=1e-5, rtol=1e-5)
    assert torch.equal(qo[..., rope_dims:], q[..., rope_dims:])


def test_relative_position_property():
    """Rotated-part dot products depend only on the offset between positions."""
    model = make_model()
    install_partial_rope(model, 4)
    rot = model.blocks[0].attn.rotary
    v = torch.randn(1, 1, 1, 16, dtype=torch.float64).expand(1, 12, 1, 16).contiguous()
    w = torch.randn(1, 1, 1, 16, dtype=torch.float64).expand(1, 12, 2, 16).contiguous()
    rot = rot.double()
    qo, ko = rot(v, w)
    d1 = (qo[0, 5, 0] * ko[0, 2, 0]).sum()
    d2 = (qo[0, 9, 0] * ko[0, 6, 0]).sum()
    torch.testing.assert_close(d1, d2)


def test_bad_dims_and_tiny_scaling():
    with pytest.raises(GolfError, match="rope_dims"):
        install_partial_rope(make_model(), 18)
    with pytest.raises(GolfError, match="rope_dims"):
        install_partial_rope(make_model(), 5)
    assert scaled_rope_dims(16, 64) == 16
    assert scaled_rope_dims(16, 16) == 4
    assert scaled_rope_dims(2, 16) == 2
    recipe = load_recipe_text("[model]\nmodel_dim = 64\nnum_heads = 4\nnum_kv_heads = 2\n")
    assert plugin._tiny(plugin.PartialRopeOptions(), recipe).rope_dims == 4
    assert plugin.PartialRopeOptions().rope_dims == 16


def test_fp32_angles_keep_positions_exact_in_a_bf16_model():
    """#1530 on: the angle table from float32 positions and the bf16-rounded frequencies, against
    float64 ``cos(t * f)``; the default table of a bf16 model rounds the positions (#1394's)."""
    T = 2048
    tables = {}
    for fp32 in (False, True):
        m = make_model()
        install_partial_rope(m, 16, fp32_angles=fp32)
        m.bfloat16()
        rot = m.blocks[0].attn.rotary
        assert rot.inv_freq.dtype == torch.bfloat16
        tables[fp32] = rot.cos_sin(T, torch.float32)[0]
    freqs = m.blocks[0].attn.rotary.inv_freq.double()
    want = torch.cos(torch.arange(T, dtype=torch.float64)[:, None] * freqs[None, :])
    assert float((tables[True].double() - want).abs().max()) < 1e-3   # fp32 angle rounding at t*f ~ 2000
    assert float((tables[False].double() - want).abs().max()) > 0.5  # bf16 positions and angles


def test_fp32_angles_option_reaches_every_attention():
    rec = load_recipe_text('plugins = ["partial-rope"]\n[model]\nmodel_dim = 64\nnum_heads = 4\nnum_kv_heads = 2\n'
                           '[options.partial-rope]\nrope_dims = 16\nfp32_angles = true\n')
    m = plugin.golf_build_model(make_model(), plugin.PartialRopeOptions(**rec.options["partial-rope"]))
    assert all(b.attn.rotary.angle_dtype == torch.float32 for b in m.blocks)
