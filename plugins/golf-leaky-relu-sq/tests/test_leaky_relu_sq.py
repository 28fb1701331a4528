"""leaky-relu-sq: leaky_relu(x, slope)**2 against an elementwise float64 reference."""
from types import SimpleNamespace

import pytest
import torch

from golf_core.model import GPT, GPTConfig
from golf_leaky_relu_sq import LeakyReLUSquared, install_leaky_relu_sq, leaky_relu_squared
from golf_leaky_relu_sq import plugin


@pytest.mark.parametrize("slope", [0.5, 0.0, 0.1])
def test_matches_reference(slope):
    x = torch.linspace(-3, 3, 61)
    ref = torch.tensor([(v if v >= 0 else slope * v) ** 2 for v in x.double().tolist()], dtype=torch.float64)
    torch.testing.assert_close(leaky_relu_squared(x, slope).double(), ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(LeakyReLUSquared(slope)(x).double(), ref, atol=1e-6, rtol=1e-6)


def test_negative_inputs_quarter_square():
    x = torch.tensor([-2.0, -1.0, 0.0, 1.5])
    assert leaky_relu_squared(x).tolist() == [1.0, 0.25, 0.0, 2.25]


def test_installed_in_every_mlp():
    model = GPT(GPTConfig(vocab_size=64, num_layers=3, model_dim=32, num_heads=4, num_kv_heads=2))
    cpu_ctx = SimpleNamespace(device=torch.device("cpu"))
    plugin.golf_build_model(model, plugin.LeakyReLUSqOptions(), cpu_ctx)
    for b in model.blocks:
        assert isinstance(b.mlp.activation, LeakyReLUSquared) and b.mlp.activation.negative_slope == 0.5
    assert install_leaky_relu_sq(model, 0.25) == 3
    h = torch.randn(5, 32)
    mlp = model.blocks[0].mlp
    with torch.no_grad():
        mlp.proj.weight.normal_()
        ref = mlp.proj(torch.where(mlp.fc(h) >= 0, mlp.fc(h), 0.25 * mlp.fc(h)) ** 2)
    torch.testing.assert_close(mlp(h), ref)
