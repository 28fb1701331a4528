"""parallel-residuals: each mode against a float64 loop written from the records' formulas."""
import pytest
import torch
import torch.nn.functional as F

from golf_core import GolfError
from golf_core.api import Trunk
from golf_core.model import GPT, GPTConfig, LayerSchedule, count_parameters
from golf_core.testkit import plugin_problems
from golf_core.train.optim import route_parameters
from golf_parallel_residuals import GPTJTrunk, RoutedLaneTrunk, SplitLaneTrunk, install_parallel
from golf_parallel_residuals import plugin

L, D = 6, 16


def make_model(looped=False):
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=32, num_layers=L, model_dim=D, num_heads=2, num_kv_heads=1)).double()
    if looped:  # a depth-recurrence layout: encoder [0,1,2,1,2], decoder [3,1,2,3,4,5]... (indices < start in the encoder)
        m.set_schedule(LayerSchedule(range(3), range(3, 6), [0, 1, 2, 1], [2, 3, 4, 5]))
        m.looping_active = True
    with torch.no_grad():
        for b in m.blocks:  # wake up the zero-init projections and give every control tensor a value
            b.attn.proj.weight.normal_(0, 0.3)
            b.mlp.proj.weight.normal_(0, 0.3)
            b.resid_mix.normal_(0.5, 0.3)
            b.attn_scale.normal_(1, 0.2)
            b.mlp_scale.normal_(1, 0.2)
            b.ln_scale = 0.7
        m.skips.skip_weights.normal_(1, 0.3)
    return m


def A(b, x):  # attn_scale * attn(attn_norm(x) * s)
    return b.attn_scale * b.attn(F.rms_norm(x, (x.size(-1),)) * b.ln_scale)


def M(b, x):
    return b.mlp_scale * b.mlp(F.rms_norm(x, (x.size(-1),)) * b.ln_scale)


def mix(b, x, x0):
    return b.resid_mix[0] * x + b.resid_mix[1] * x0


def reference(m, ids, mode, start, placement="both-lanes"):
    """The records' decoder loops, written out (#1412 Block.forward, #1477 and #1529 forward_logits;
    ``placement="lane0"``: #1530 forward_logits, the lanes fork before the first parallel skip)."""
    x = F.rms_norm(m.tok_emb(ids), (D,))
    x0 = x
    enc, dec = m.schedule.active()
    stack = []
    for i in enc:
        b = m.blocks[i]
        xi = mix(b, x, x0)
        if mode == "gptj" and i >= start:
            x = xi + A(b, xi) + M(b, xi)
        else:
            x = xi + A(b, xi)
            x = x + M(b, x)
        stack.append(x)
    w = m.skips.skip_weights
    lane0 = lane1 = None
    for j, i in enumerate(dec):
        b = m.blocks[i]
        pop = j < m.skips.num_skips and stack
        if mode == "gptj":
            if pop:
                x = x + w[j] * stack.pop()
            xi = mix(b, x, x0)
            if i >= start:
                x = xi + A(b, xi) + M(b, xi)
            else:
                x = xi + A(b, xi)
                x = x + M(b, x)
            continue
        if lane0 is None and i < start:  # a sequential decoder block
            if pop:
                x = x + w[j] * stack.pop()
            xi = mix(b, x, x0)
            x = xi + A(b, xi)
            x = x + M(b, x)
            continue
        if lane0 is None:  # the first parallel block: fork
            if pop and placement == "both-lanes":
                x = x + w[j] * stack.pop()
                pop = False
            lane0, lane1 = x, x.clone()
        if pop:
            lane0 = lane0 + w[j] * stack.pop()
        if mode == "split":
            a_in = mix(b, lane0, x0)
            lane0, lane1 = a_in + A(b, a_in), lane1 + M(b, lane1)
        else:
            P, r = m.trunk.parallel_post_lambdas, m.trunk.parallel_resid_lambdas
            a, mm = A(b, mix(b, lane0, x0)), M(b, lane1)
            lane0, lane1 = (r[i, 0] * lane0 + P[i, 0, 0] * a + P[i, 1, 0] * mm,
                            r[i, 1] * lane1 + P[i, 0, 1] * a + P[i, 1, 1] * mm)
    if lane0 is not None:
        if mode == "split":
            x = m.trunk.lane_merge * lane0 + (1 - m.trunk.lane_merge) * lane1
        else:
            x = 0.5 * (lane0 + lane1)
    return F.rms_norm(x, (D,))


def lane_model(mode, start, looped, placement):
    """A float64 model with the ``mode`` trunk, its tensors moved off their init, and token ids."""
    m = make_model(looped)
    install_parallel(m, mode, start, skip_placement=placement)
    m.double()  # the trunk's tensors are created float32, as the records' (prepare_for_device keeps them so)
    with torch.no_grad():
        for p in m.trunk.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return m, torch.randint(0, 32, (2, 7))


@pytest.mark.parametrize("looped", [False, True])
@pytest.mark.parametrize("mode,start", [("gptj", 2), ("gptj", 4), ("split", 4), ("split", 3), ("routed", 4), ("routed", 5)])
def test_trunk_matches_the_float64_reference(mode, start, looped):
    m, ids = lane_model(mode, start, looped, "both-lanes")
    with torch.no_grad():
        got = m.forward_hidden(ids)
        ref = reference(m, ids, mode, start)
        plain = make_model(looped).forward_hidden(ids)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(got, plain)  # the mode changed the model


@pytest.mark.parametrize("looped", [False, True])
@pytest.mark.parametrize("mode,start", [("split", 3), ("split", 4), ("routed", 3), ("routed", 4), ("routed", 5)])
def test_lane0_skip_placement_matches_the_float64_reference(mode, start, looped):
    """#1530's placement: the lanes fork before the first parallel block's skip, which reaches
    lane0 only; with a skip at the fork the model differs from #1529's placement."""
    m, ids = lane_model(mode, start, looped, "lane0")
    with torch.no_grad():
        got = m.forward_hidden(ids)
        ref = reference(m, ids, mode, start, "lane0")
        m.trunk.skip_placement = "both-lanes"
        other = m.forward_hidden(ids)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    assert (got - other).abs().max() > 1e-3  # every start here has a skip at the fork


def test_skip_placement_is_checked_and_reaches_the_trunk():
    m = make_model()
    with pytest.raises(GolfError, match="skip_placement = 'lane0'.*gptj"):
        install_parallel(m, "gptj", 4, skip_placement="lane0")
    with pytest.raises(GolfError, match="skip_placement 'lane1'"):
        install_parallel(m, "routed", 4, skip_placement="lane1")
    plugin.golf_build_model(m, plugin.ParallelResidualsOptions(start_layer=4, skip_placement="lane0"))
    assert m.trunk.skip_placement == "lane0" and "skip_placement='lane0'" in repr(m.trunk)


def test_parameters_names_and_routing():
    base = count_parameters(make_model())
    for mode, extra in (("gptj", 0), ("split", 1), ("routed", 6 * L)):
        m = make_model()
        install_parallel(m, mode, 4)
        assert count_parameters(m) == base + extra
    names = {n for n, _ in route_parameters(m)["scalar"]}
    assert {"trunk.parallel_post_lambdas", "trunk.parallel_resid_lambdas"} <= names
    assert m.trunk.parallel_post_lambdas.shape == (L, 2, 2) and torch.all(m.trunk.parallel_resid_lambdas == 1.1)
    s = make_model()
    install_parallel(s, "split", 4)
    assert "trunk.lane_merge" in {n for n, _ in route_parameters(s)["scalar"]} and s.trunk.lane_merge.item() == 0.5
    assert type(make_model().trunk) is Trunk and isinstance(GPTJTrunk(0), Trunk)  # the core's default
    assert isinstance(s.trunk, SplitLaneTrunk) and isinstance(m.trunk, RoutedLaneTrunk)


def test_at_init_routed_lanes_are_not_the_identity_but_gptj_at_start_past_the_end_is():
    m = make_model()
    ids = torch.randint(0, 32, (1, 5))
    ref = m.forward_hidden(ids)
    install_parallel(m, "gptj", L - 1)
    m.trunk.start = L  # no block parallel: the baseline exactly
    torch.testing.assert_close(m.forward_hidden(ids), ref, rtol=0, atol=0)


def test_lanes_live_in_the_decoder_and_a_bad_start_fails_in_one_line():
    m = make_model()
    with pytest.raises(GolfError, match="start_layer = 9"):
        install_parallel(m, "routed", 9)
    # blocks 3 and 4 sit in this layout's encoder: they run sequentially, the lanes fork at block 5
    m.set_schedule(LayerSchedule(range(3), range(3, 6), [0, 1, 2, 3, 4], [5]))
    m.looping_active = True
    plugin.golf_build_model(m, plugin.ParallelResidualsOptions(mode="routed", start_layer=3))
    m.double()
    ids = torch.randint(0, 32, (1, 5))
    with torch.no_grad():
        torch.testing.assert_close(m.forward_hidden(ids), reference(m, ids, "routed", 3), rtol=1e-12, atol=1e-12)


def test_keeps_the_plugin_contract():
    assert plugin_problems("parallel-residuals") == []
