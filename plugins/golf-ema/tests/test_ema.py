"""EMA against its closed form in float64, plus the plugin's train/pre-quant/checkpoint flow."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from golf_core.context import RunContext
from golf_core.recipe import Recipe
from golf_core.train.checkpoint import from_plain, to_plain
from golf_ema import WeightEMA
from golf_ema import plugin as P


class Tiny(nn.Module):
    """Float32 and bf16 parameters, a float buffer and an integer buffer."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 3))
        self.b = nn.Parameter(torch.randn(3, dtype=torch.bfloat16))
        self.register_buffer("scale", torch.ones(3))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))


def _perturb(model, gen):
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_((torch.randn(t.shape, generator=gen) * 0.1).to(t.dtype))
            else:
                t.add_(1)


def _snapshot(model):
    return {n: t.detach().double().clone() for n, t in model.state_dict().items() if t.is_floating_point()}


def closed_form(history, d):
    """(1-d) * sum_{i=1..k} d^(k-i) w_i + d^k w_0, in float64, from the snapshots w_0..w_k."""
    k = len(history) - 1
    out = {}
    for name in history[0]:
        acc = (d ** k) * history[0][name].numpy()
        for i in range(1, k + 1):
            acc = acc + (1 - d) * (d ** (k - i)) * history[i][name].numpy()
        out[name] = acc
    return out


@pytest.mark.parametrize("d,k", [(0.997, 60), (0.9, 25), (0.0, 3)])
def test_ema_equals_closed_form(d, k):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = Tiny()
    history = [_snapshot(model)]
    ema = WeightEMA(model, decay=d)
    for _ in range(k):
        _perturb(model, gen)
        history.append(_snapshot(model))
        ema.update(model)
    want = closed_form(history, d)
    assert set(ema.shadow) == {"w", "b", "scale"}  # the integer buffer is not averaged
    for name, arr in want.items():
        assert ema.shadow[name].dtype == torch.float32
        # float32 rounding: at most ~2 ulps per update of the largest magnitude seen
        tol = 2 * (k + 1) * 2.0**-24 * max(float(np.abs(h[name].numpy()).max()) for h in history)
        np.testing.assert_allclose(ema.shadow[name].double().numpy(), arr, rtol=0, atol=tol, err_msg=name)
    assert ema.updates == k


def test_copy_to_casts_to_each_dtype_and_keeps_integer_buffers():
    torch.manual_seed(0)
    model = Tiny()
    ema = WeightEMA(model, decay=0.5)
    gen = torch.Generator().manual_seed(2)
    _perturb(model, gen)
    ema.update(model)
    count = int(model.count)
    ema.copy_to(model)
    assert model.b.dtype == torch.bfloat16 and model.w.dtype == torch.float32
    assert torch.equal(model.b.data, ema.shadow["b"].to(torch.bfloat16))
    assert torch.equal(model.w.data, ema.shadow["w"])
    assert int(model.count) == count


def _ctx():
    return RunContext(recipe=Recipe(plugins=["ema"]), plugins=None)


def _run(ctx, model, gen, steps, opts, history=None):
    for _ in range(steps):
        _perturb(model, gen)
        if history is not None:
            history.append(_snapshot(model))
        P.golf_on_step_end(model=model, ctx=ctx, opts=opts)


def test_plugin_flow_applies_closed_form_at_pre_quant():
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(4)
    model, ctx, opts = Tiny(), _ctx(), P.EMAOptions(decay=0.95)
    with torch.no_grad():  # weights before the clock (e.g. compile warmup) are not part of the average
        model.w.mul_(3.0)
    P.golf_on_train_start(model=model, ctx=ctx, opts=opts)
    history = [_snapshot(model)]
    _run(ctx, model, gen, 30, opts, history)
    out = P.golf_pre_quant(model=model, ctx=ctx, opts=opts)
    assert out is model
    want = closed_form(history, 0.95)
    np.testing.assert_allclose(model.w.detach().double().numpy(), want["w"], rtol=0, atol=2e-5)
    np.testing.assert_allclose(model.b.detach().double().numpy(), want["b"], rtol=0, atol=1e-2)  # bf16 cast


def test_checkpoint_resume_gives_the_same_average():
    torch.manual_seed(5)
    init = Tiny()
    opts = P.EMAOptions()
    # uninterrupted: 12 steps
    m1, c1 = Tiny(), _ctx()
    m1.load_state_dict(init.state_dict())
    P.golf_on_train_start(model=m1, ctx=c1, opts=opts)
    _run(c1, m1, torch.Generator().manual_seed(9), 12, opts)
    # interrupted after 5 steps; the state goes through a weights_only checkpoint file
    m2, c2 = Tiny(), _ctx()
    m2.load_state_dict(init.state_dict())
    P.golf_on_train_start(model=m2, ctx=c2, opts=opts)
    gen = torch.Generator().manual_seed(9)
    _run(c2, m2, gen, 5, opts)
    buf = io.BytesIO()
    torch.save(to_plain(P.golf_state_dict(ctx=c2, opts=opts)), buf)
    state = from_plain(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    m3, c3 = Tiny(), _ctx()
    m3.load_state_dict(m2.state_dict())
    P.golf_load_state_dict(state=state, ctx=c3, opts=opts)
    P.golf_on_train_start(model=m3, ctx=c3, opts=opts)  # must keep the restored average
    _run(c3, m3, gen, 7, opts)
    e1, e3 = c1.stash[P.EMA_STATE], c3.stash[P.EMA_STATE]
    assert e3.updates == e1.updates == 12
    for name in e1.shadow:
        assert torch.equal(e1.shadow[name], e3.shadow[name]), name


def test_step_before_start_is_an_error_and_no_training_keeps_weights():
    from golf_core.errors import PluginError

    model, ctx, opts = Tiny(), _ctx(), P.EMAOptions()
    with pytest.raises(PluginError, match="ema"):
        P.golf_on_step_end(model=model, ctx=ctx, opts=opts)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    P.golf_pre_quant(model=model, ctx=ctx, opts=opts)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_tiny_keeps_the_half_life_fraction():
    from golf_core.config import TrainSection

    tiny = P._tiny(P.EMAOptions(), Recipe(train=TrainSection(iterations=40)))
    assert tiny.decay == pytest.approx(0.997 ** (5000 / 40))
    full = P._tiny(P.EMAOptions(), Recipe(train=TrainSection(iterations=20000)))
    assert full.decay == pytest.approx(0.997)  # never raised above the recipe's decay
    with pytest.raises(ValueError):
        WeightEMA(Tiny(), decay=1.0)
