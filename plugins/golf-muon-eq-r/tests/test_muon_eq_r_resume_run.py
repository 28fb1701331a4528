"""Run level: the core loop with muon-eq-r, killed after a checkpoint and resumed, ends on exactly
the weights of an uninterrupted run (the schedule's step count travels in the optimizer state)."""
from __future__ import annotations

import pytest
import torch

from golf_core import TechniqueInfo, hookimpl
from golf_core.train import testing as T
from golf_core.train.loop import train
from golf_core.train.testing import flat_params, make_train_context, max_abs_diff, synthetic_shards, tiny_recipe
from golf_muon_eq_r import STEP_KEY
from golf_muon_eq_r import plugin as eqr_plugin

_build = T.build_model


class Crash:
    def __init__(self, at):
        self.at = at

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="crash"))

    @hookimpl
    def golf_on_step_end(self, progress):
        if self.at is not None and progress.step == self.at:
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


def _run(data, out_dir, crash_at=None, resume=None):
    # a short warmup so the schedule's first steps differ visibly: 0.80 -> 0.95 over 4 steps
    recipe = tiny_recipe(iterations=7, checkpoint_every=2, warmup_steps=1, train_batch_tokens=1024)
    recipe.options = {"muon-eq-r": {"momentum_warmup_start": 0.8, "momentum": 0.95, "momentum_warmup_steps": 4}}
    ctx = make_train_context(recipe, [("muon-eq-r", eqr_plugin), ("crash", Crash(crash_at))], data=data, out_dir=out_dir)
    model = _build(ctx, seed=0)
    res = train(model, ctx, resume_from=resume)
    return model, res, ctx


def test_resume_is_exact_with_muon_eq_r(data, tmp_path):
    m_full, r_full, ctx = _run(data, tmp_path / "full")
    assert any("muon-eq-r: matrices:" in line for line in ctx.log.lines)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(data, tmp_path / "crashed", crash_at=5)
    m_res, r_res, _ = _run(data, tmp_path / "crashed", resume=tmp_path / "crashed")
    assert r_res.resumed_step == 4 and r_res.steps == 7
    assert max_abs_diff(flat_params(m_full), flat_params(m_res)) == 0.0
    assert r_res.losses == r_full.losses


def test_schedule_counts_only_timed_steps(data):
    """The compile warmup's steps are undone: the schedule starts at step 0 when the clock does."""
    recipe = tiny_recipe(iterations=3, warmup_steps=2, train_batch_tokens=1024)
    ctx = make_train_context(recipe, [("muon-eq-r", eqr_plugin)], data=data)
    model = _build(ctx, seed=0)
    from golf_core.train.loop import configure_optimizers

    opts = configure_optimizers(model, ctx, compile_ns=False)
    muon = opts["muon"]
    momenta = []
    muon.register_step_post_hook(lambda o, a, k: momenta.append(o.param_groups[0]["momentum"]))
    train(model, ctx, optimizers=opts)
    assert momenta[:2] == pytest.approx([0.92, 0.92 + 0.07 / 1500])  # 2 warmup steps, then restored
    assert momenta[2:] == pytest.approx([0.92 + t * 0.07 / 1500 for t in range(3)])
    assert muon.param_groups[0][STEP_KEY] == 3
