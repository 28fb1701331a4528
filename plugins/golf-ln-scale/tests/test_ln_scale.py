"""ln-scale: normed block inputs scaled by 1/sqrt(physical index + 1), also on looped reuse."""
import math

import torch

from golf_core.model import GPT, GPTConfig, LayerSchedule
from golf_ln_scale import install_ln_scale, ln_scale_factor
from golf_ln_scale import plugin


def make_model(layers=6):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=64, num_layers=layers, model_dim=32, num_heads=4, num_kv_heads=2))


def test_factors():
    model = make_model()
    got = install_ln_scale(model)
    assert got == [1 / math.sqrt(i + 1) for i in range(6)]
    assert [b.ln_scale for b in model.blocks] == got
    assert ln_scale_factor(3) == 0.5


def test_rms_of_attn_and_mlp_inputs_under_reuse():
    """Hook the attention and MLP inputs: their RMS equals the physical block's factor, also
    when block 2 runs three times in a looped schedule."""
    model = make_model()
    plugin.golf_build_model(model)
    model.set_schedule(LayerSchedule([0, 1], [2, 3, 4, 5], [0, 1, 2, 2], [2, 3, 4, 5]))
    model.looping_active = True
    seen = []
    for i, b in enumerate(model.blocks):
        b.attn.register_forward_pre_hook(lambda m, args, i=i: seen.append((i, args[0])))
        b.mlp.register_forward_pre_hook(lambda m, args, i=i: seen.append((i, args[0])))
    with torch.no_grad():
        model.forward_logits(torch.randint(0, 64, (2, 8)))
    assert [i for i, _ in seen][::2] == [0, 1, 2, 2, 2, 3, 4, 5]
    for i, h in seen:
        rms = h.double().pow(2).mean(-1).sqrt()
        torch.testing.assert_close(rms, torch.full_like(rms, 1 / math.sqrt(i + 1)), atol=1e-4, rtol=1e-4)
