"""muon-wd-taper: the multiplier against piecewise-linear interpolation of #1729's figures, and
the decay every timed step of a real training loop uses."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from golf_core import TechniqueInfo, hookimpl
from golf_core.testkit import plugin_problems, tiny_run_problems
from golf_core.train.loop import train
from golf_core.train.testing import build_model, make_train_context, synthetic_shards, tiny_recipe
from golf_muon_wd_taper import wd_multiplier
from golf_muon_wd_taper import plugin


@pytest.mark.parametrize("start,final", [(0.70, 0.50), (0.0, 0.25), (0.9, 1.5), (0.5, 0.0)])
def test_multiplier_is_one_then_linear_to_final(start, final):
    fracs = np.linspace(-0.2, 1.3, 601)
    ref = np.interp(fracs, [start, 1.0], [1.0, final])  # flat outside [start, 1]
    got = np.array([wd_multiplier(f, start, final) for f in fracs])
    assert np.abs(got - ref).max() < 1e-12


def test_degenerate_settings_follow_the_record():
    assert wd_multiplier(0.99, start=1.0) == 1.0          # a start at the end never tapers
    assert wd_multiplier(0.99, start=1.7) == 1.0          # clamped to 1
    assert wd_multiplier(0.85, start=-0.5, final=-3) == pytest.approx(0.15)  # start 0, final 0
    assert wd_multiplier(0.85) == pytest.approx(0.75)     # #1729: halfway through 0.70..1.0


class MuonDecay:
    """In-process test plugin: sets Muon's decay to 0.1 and records it after every step."""

    def __init__(self):
        self.seen = []
        self.opt = None

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="muon-decay"))

    @hookimpl
    def golf_configure_optimizers(self, optimizers):
        for m in optimizers.muons():
            for g in m.param_groups:
                g["weight_decay"] = 0.1
        self.opt = optimizers
        return optimizers

    @hookimpl
    def golf_on_step_end(self, progress):
        self.seen.append((progress.step, [g["weight_decay"] for m in self.opt.muons() for g in m.param_groups]))


def test_each_timed_step_uses_the_tapered_decay(tmp_path):
    data = synthetic_shards(tmp_path, 64, train_tokens=30_000)
    spy = MuonDecay()
    recipe = tiny_recipe(iterations=10, warmup_steps=2)
    ctx = make_train_context(recipe, [("muon-wd-taper", plugin), ("muon-decay", spy)], data=data)
    model = build_model(ctx, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, ctx)
    assert [s for s, _ in spy.seen] == list(range(1, 11))
    for step, wds in spy.seen:
        want = 0.1 * wd_multiplier((step - 1) / 10)  # the fraction the step's lr used: step/iterations
        assert wds and all(abs(w - want) < 1e-15 for w in wds), (step, wds, want)
    assert spy.seen[-1][1][0] == pytest.approx(0.1 * (1 - 0.5 * (0.9 - 0.7) / 0.3))
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_keeps_the_golf_plugin_contract():
    assert plugin_problems("muon-wd-taper") == []


def test_runs_alone_in_a_tiny_recipe(tmp_path):
    assert tiny_run_problems("muon-wd-taper", tmp_path) == []
