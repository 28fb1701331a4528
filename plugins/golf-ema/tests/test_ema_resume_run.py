"""Run level: the core loop with ema, killed after a checkpoint and resumed, ends with exactly the
average of an uninterrupted run, and the average starts at the weights the clock starts from."""
from __future__ import annotations

import pytest
import torch

from golf_core import TechniqueInfo, hookimpl
from golf_core.train import testing as T
from golf_core.train.loop import train
from golf_core.train.testing import flat_params, make_train_context, max_abs_diff, synthetic_shards, tiny_recipe
from golf_ema import plugin as ema_plugin

_build = T.build_model


class Watch:
    """Keeps every step's weights (float64) and crashes on request."""

    def __init__(self, crash_at=None):
        self.crash_at, self.history = crash_at, []

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="watch"))

    @hookimpl
    def golf_on_train_start(self, model):
        self.history = [flat_params(model)]

    @hookimpl
    def golf_on_step_end(self, model, progress):
        self.history.append(flat_params(model))
        if self.crash_at is not None and progress.step == self.crash_at:
            raise RuntimeError("simulated crash")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread and leave the other core to the rest of the suite."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_shards(tmp_path_factory.mktemp("shards"), 64, train_tokens=30_000)


def _run(data, out_dir=None, crash_at=None, resume=None, iterations=7):
    recipe = tiny_recipe(iterations=iterations, checkpoint_every=2 if out_dir else 0, warmup_steps=1, train_batch_tokens=1024)
    recipe.options = {"ema": {"decay": 0.8}}
    watch = Watch(crash_at)
    ctx = make_train_context(recipe, [("ema", ema_plugin), ("watch", watch)], data=data, out_dir=out_dir)
    model = _build(ctx, seed=0)
    res = train(model, ctx, resume_from=resume)
    return model, res, ctx, watch


def test_ema_in_the_loop_is_the_closed_form_from_the_start_weights(data):
    model, res, ctx, watch = _run(data, iterations=6)
    d, k = 0.8, 6
    hist = watch.history  # w_0 (after the warmup was undone) .. w_6
    assert len(hist) == k + 1
    ema_plugin.golf_pre_quant(model=model, ctx=ctx, opts=ema_plugin.EMAOptions(decay=d))
    got = flat_params(model)
    for name in hist[0]:
        want = d ** k * hist[0][name] + sum((1 - d) * d ** (k - i) * hist[i][name] for i in range(1, k + 1))
        assert torch.allclose(got[name], want, rtol=0, atol=1e-6), name


def test_resume_gives_the_same_average(data, tmp_path):
    _, _, c_full, _ = _run(data, tmp_path / "full")
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(data, tmp_path / "crashed", crash_at=5)
    _, r_res, c_res, _ = _run(data, tmp_path / "crashed", resume=tmp_path / "crashed")
    assert r_res.resumed_step == 4
    e_full, e_res = c_full.stash[ema_plugin.EMA_STATE], c_res.stash[ema_plugin.EMA_STATE]
    assert e_full.updates == e_res.updates == 7
    assert max_abs_diff({k: v.double() for k, v in e_full.shadow.items()},
                        {k: v.double() for k, v in e_res.shadow.items()}) == 0.0
