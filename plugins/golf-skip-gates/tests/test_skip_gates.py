"""skip-gates: g*x + (1-g)*w*skip, zero-init gates, control-tensor names, resized by schedules."""
import torch

from golf_core.model import GPT, GPTConfig, LayerSchedule, count_parameters, is_control_name
from golf_core.train.optim import route_parameters
from golf_skip_gates import SigmoidGatedSkips
from golf_skip_gates import plugin


def make_model(layers=11, dim=32):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=64, num_layers=layers, model_dim=dim, num_heads=4, num_kv_heads=2))


def test_formula_against_float64_reference():
    sk = SigmoidGatedSkips(3, 5).double()
    with torch.no_grad():
        sk.skip_weights.normal_()
        sk.skip_gates.normal_()
    x = torch.randn(2, 4, 5, dtype=torch.float64)
    s = torch.randn(2, 4, 5, dtype=torch.float64)
    for i in range(3):
        out = sk(i, x, s)
        for c in range(5):
            g = 1.0 / (1.0 + torch.exp(-sk.skip_gates[i, c]))
            ref = g * x[..., c] + (1 - g) * sk.skip_weights[i, c] * s[..., c]
            torch.testing.assert_close(out[..., c], ref)


def test_init_and_half_gate():
    sk = SigmoidGatedSkips(4, 6)
    assert torch.all(sk.skip_gates == 0) and torch.all(sk.skip_weights == 1)
    x, s = torch.randn(1, 2, 6), torch.randn(1, 2, 6)
    torch.testing.assert_close(sk(0, x, s), 0.5 * x + 0.5 * s)


def test_install_names_routing_and_count():
    model = make_model()
    base = count_parameters(model)
    plugin.golf_build_model(model)
    assert isinstance(model.skips, SigmoidGatedSkips) and model.skips.num_skips == 5
    names = dict(model.named_parameters())
    assert "skips.skip_gates" in names and "skips.skip_weights" in names
    assert not is_control_name("skips.skip_gates")  # the core knows nothing of gates ...
    assert is_control_name("skips.skip_gates", model.golf_control_patterns)  # ... the plugin says so
    routes = route_parameters(model)
    scalar = {n for n, _ in routes["scalar"]}
    assert {"skips.skip_gates", "skips.skip_weights"} <= scalar
    assert count_parameters(model) == base + 5 * 32
    # a looped schedule resizes it and keeps the type (depth recurrence's 7 slots)
    model.set_schedule(LayerSchedule(range(5), range(5, 11), [0, 1, 2, 3, 4, 5, 4], [5, 4, 5, 6, 7, 8, 9, 10]))
    assert isinstance(model.skips, SigmoidGatedSkips) and model.skips.skip_gates.shape == (7, 32)


def test_forward_uses_the_gate():
    """The model's decoder merges through lerp: with gates at +inf the skip is ignored entirely."""
    model = make_model(4)
    plugin.golf_build_model(model)
    ids = torch.randint(0, 64, (2, 6))
    with torch.no_grad():
        for b in model.blocks:  # zero-init projections make every block an identity: wake them up
            b.attn.proj.weight.normal_(0, 0.2)
            b.mlp.proj.weight.normal_(0, 0.2)
        model.skips.skip_gates.fill_(50.0)
        closed = model.forward_logits(ids)
        model.skips.skip_weights.fill_(123.0)
        still = model.forward_logits(ids)
        model.skips.skip_gates.fill_(0.0)
        opened = model.forward_logits(ids)
    torch.testing.assert_close(closed, still)
    assert not torch.allclose(closed, opened)
