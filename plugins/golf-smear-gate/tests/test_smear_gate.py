"""smear-gate: the smear against a per-position float64 loop, BOS fix vs #1667 form, names, init."""
import pytest
import torch

from golf_core import GolfError
from golf_core.model import GPT, GPTConfig, count_parameters
from golf_core.testkit import plugin_problems
from golf_core.train.optim import route_parameters
from golf_smear_gate import SmearGate, install_smear_gate
from golf_smear_gate import plugin


def loop_reference(e, ids, w, lam, window, bos_id, fix):
    """Position by position, in float64."""
    out = e.clone()
    B, T, _ = e.shape
    for b in range(B):
        for t in range(1, T):
            z = sum(float(w[k]) * float(e[b, t, k]) for k in range(window))
            g = float(lam) / (1.0 + torch.exp(torch.tensor(-z, dtype=torch.float64)))
            if fix and int(ids[b, t]) == bos_id:
                continue
            out[b, t] = e[b, t] + g * e[b, t - 1]
    return out


@pytest.mark.parametrize("fix", [True, False])
def test_smear_matches_the_loop(fix):
    torch.manual_seed(0)
    gate = SmearGate(window=5, bos_id=1, bos_fix=fix).double()
    with torch.no_grad():
        gate.smear_gate.weight.normal_()
        gate.smear_lambda.fill_(0.8)
    e = torch.randn(2, 9, 7, dtype=torch.float64)
    ids = torch.randint(2, 10, (2, 9))
    ids[0, 0], ids[0, 4], ids[1, 6] = 1, 1, 1  # BOS mid-stream
    got = gate(e, ids)
    ref = loop_reference(e, ids, gate.smear_gate.weight[0].detach(), gate.smear_lambda[0].detach(), 5, 1, fix)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    leaked = not torch.equal(got[0, 4], e[0, 4])
    assert leaked is (not fix)  # the #1667 form smears doc N's last token into doc N+1's BOS


def test_identity_at_init_and_in_the_model():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=32, num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1))
    ids = torch.randint(0, 32, (2, 6))
    with torch.no_grad():
        before = m.forward_logits(ids)
    base = count_parameters(m)
    install_smear_gate(m)
    assert count_parameters(m) == base + 13
    with torch.no_grad():
        torch.testing.assert_close(m.forward_logits(ids), before, rtol=0, atol=0)
        m.embed_transform.smear_lambda.fill_(1.0)
        m.embed_transform.smear_gate.weight.fill_(0.5)
        assert not torch.allclose(m.forward_logits(ids), before)
    scalar = {n for n, _ in route_parameters(m)["scalar"]}
    assert {"embed_transform.smear_gate.weight", "embed_transform.smear_lambda"} <= scalar


def test_causal_a_later_token_changes_nothing_before_it():
    torch.manual_seed(1)
    gate = SmearGate(window=4).double()
    with torch.no_grad():
        gate.smear_gate.weight.normal_()
        gate.smear_lambda.fill_(1.3)
    e = torch.randn(1, 8, 6, dtype=torch.float64)
    ids = torch.randint(2, 10, (1, 8))
    e2, ids2 = e.clone(), ids.clone()
    e2[0, 5:] += 1.0
    ids2[0, 5] = 1
    torch.testing.assert_close(gate(e, ids)[:, :5], gate(e2, ids2)[:, :5], rtol=0, atol=0)


def test_options_and_contract():
    m = GPT(GPTConfig(vocab_size=32, num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1))
    with pytest.raises(GolfError, match="window = 40"):
        install_smear_gate(m, window=40)
    plugin.golf_build_model(m, plugin.SmearGateOptions(bos_fix=False))
    assert m.embed_transform.bos_fix is False
    assert plugin_problems("smear-gate") == []


def test_untrainable_gate_is_counted_never_stepped_and_stays_the_identity():
    """``trainable = false`` (#1667 as run): the 13 parameters are in the model and the
    artifact, in no optimizer group, and a training step leaves them at zero."""
    from golf_core.config import TrainSection
    from golf_core.train.optim import build_optimizers
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=32, num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1))
    base = count_parameters(m)
    ids = torch.randint(0, 32, (2, 6))
    with torch.no_grad():
        before = m.forward_logits(ids)
    plugin.golf_build_model(m, plugin.SmearGateOptions(bos_fix=False, trainable=False))
    assert count_parameters(m) == base + 13
    routed = {n for group in route_parameters(m).values() for n, _ in group}
    assert not routed & {"embed_transform.smear_gate.weight", "embed_transform.smear_lambda"}
    opt = build_optimizers(m, TrainSection(grad_clip_norm=0.3))
    opt.check_covers(m)
    m(ids, torch.randint(0, 32, (2, 6))).backward()
    opt.step()
    assert not m.embed_transform.smear_lambda.any() and not m.embed_transform.smear_gate.weight.any()
    with torch.no_grad():
        m2 = GPT(GPTConfig(vocab_size=32, num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1))
        m2.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("embed_transform.")})
        torch.testing.assert_close(m.forward_logits(ids), m2.forward_logits(ids), rtol=0, atol=0)
        assert not torch.equal(m.forward_logits(ids), before)  # the step moved the rest of the model
