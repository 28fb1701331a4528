"""qk-gain: every attention's q_gain starts at the option's value and scales q only."""
import pytest
import torch

from golf_core.model import GPT, GPTConfig, Rotary, rms_norm
from golf_qk_gain import set_qk_gain
from golf_qk_gain import plugin


def tiny_model(layers=3):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=64, num_layers=layers, model_dim=32, num_heads=4, num_kv_heads=2))


def test_defaults_and_registration():
    assert plugin.QKGainOptions().init == 4.0
    got = []
    plugin.golf_register(got.append)
    assert got[0].name == "qk-gain" and "#1394" in got[0].lineage


@pytest.mark.parametrize("init", [4.0, 5.0, 5.25])
def test_build_sets_every_gain_in_place(init):
    model = tiny_model()
    before = [b.attn.q_gain for b in model.blocks]
    out = plugin.golf_build_model(model, plugin.QKGainOptions(init=init))
    assert out is model
    for b, p in zip(model.blocks, before):
        assert b.attn.q_gain is p and p.requires_grad
        assert p.shape == (4,) and torch.all(p == init)
    assert set_qk_gain(model, 1.0) == 3


def test_gain_scales_queries_not_keys():
    """Independent check: q after the seam = init * rope(rms_norm(q)) per head; k unscaled."""
    model = tiny_model(1)
    plugin.golf_build_model(model, plugin.QKGainOptions(init=5.25))
    attn = model.blocks[0].attn
    with torch.no_grad():
        attn.q_gain.copy_(torch.tensor([5.25, 1.0, 2.0, 0.5]))
    q = torch.randn(2, 7, 4, 8, dtype=torch.float64)
    k = torch.randn(2, 7, 2, 8, dtype=torch.float64)
    qo, ko = attn.transform_qk(q, k)
    rq, rk = Rotary(8)(rms_norm(q), rms_norm(k))
    gains = [5.25, 1.0, 2.0, 0.5]
    for h in range(4):
        torch.testing.assert_close(qo[:, :, h], gains[h] * rq[:, :, h])
    torch.testing.assert_close(ko, rk)
