"""The training loop against a hand-written reference loop; hooks, warmup, validation, cap, resume."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from golf_core import TechniqueInfo, hookimpl
from golf_core.errors import GolfError, RecipeError
from golf_core.train import train
from golf_core.train.loop import configure_optimizers, grad_accum_steps, micro_batch_tokens
from golf_core.train.optim import build_optimizers
from golf_core.train.testing import (
    RecordingLog, build_model, flat_params, make_train_context, max_abs_diff, synthetic_shards, tiny_recipe,
)

SEED = 1234


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and do not fight other tests for the cores."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_shards(tmp_path_factory.mktemp("shards"), 64)


def _ctx(data, plugins=(), out_dir=None, **train_kw):
    return make_train_context(tiny_recipe(**train_kw), plugins, data=data, out_dir=out_dir, log=RecordingLog())


def _stream(data):
    """The training stream read straight from the shard files (header 1024 bytes, uint16)."""
    return np.concatenate([np.fromfile(f, dtype="<u2", offset=1024).astype(np.int64) for f in sorted(data.train_files)])


# ---- the reference ---------------------------------------------------------------------------

@pytest.mark.parametrize("clip", [0.0, 0.1])
def test_loop_matches_reference_loop(data, clip):
    iters, batch, seq, accum = 6, 2048, 32, 8
    ctx = _ctx(data, iterations=iters, warmdown_iters=3, grad_clip_norm=clip, log_every=1)
    model = build_model(ctx, seed=SEED)
    ref = build_model(ctx, seed=SEED)
    assert max_abs_diff(flat_params(model), flat_params(ref)) == 0
    t = ctx.recipe.train
    opt = build_optimizers(model, t, ns_dtype=torch.float32)
    res = train(model, ctx, optimizers=opt)

    # reference: whole-batch loss = mean of the 8 micro-batch losses, hand-written schedule
    ropt = build_optimizers(ref, t, ns_dtype=torch.float32)
    stream = _stream(data)
    local = batch // accum
    pos = 0
    losses = []
    for step in range(iters):
        xs, ys = [], []
        for _ in range(accum):
            span = stream[pos: pos + local + 1]
            pos += local + 1
            xs.append(torch.from_numpy(span[:-1].copy()).view(-1, seq))
            ys.append(torch.from_numpy(span[1:].copy()).view(-1, seq))
        loss = sum(ref(x, y) for x, y in zip(xs, ys)) / accum
        loss.backward()
        losses.append(loss.item())
        mul = {3: 1.0, 4: 2 / 3, 5: 1 / 3}.get(step, 1.0)           # warmdown 3 of 6 steps
        f = step / 500
        mom = (1 - f) * 0.85 + f * 0.95
        for o in ropt:
            for g in o.param_groups:
                g["lr"] = g["base_lr"] * mul
                if isinstance(o, type(ropt["muon"])):
                    g["momentum"] = mom
        if clip:
            torch.nn.utils.clip_grad_norm_(list(ref.parameters()), clip)
        for o in ropt:
            o.step()
        ref.zero_grad(set_to_none=True)

    assert res.steps == iters and res.stopped_by == "iterations" and res.grad_accum_steps == 8
    assert res.tokens == iters * batch
    np.testing.assert_allclose([l for _, l in res.losses], losses, rtol=0, atol=2e-5)
    assert max_abs_diff(flat_params(model), flat_params(ref)) < 2e-5
    assert losses[-1] < losses[0]


# ---- hooks ---------------------------------------------------------------------------------------

class Recorder:
    """Records every training hook; optionally asks for one extra compile-warmup pass."""

    def __init__(self, warm=False):
        self.events = []
        self.warm = warm

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="recorder"))

    @hookimpl
    def golf_compile_warmup(self, model):
        self.events.append(("compile_warmup",))
        if not self.warm:
            return None

        def enter(m):
            self.events.append(("enter",))
            m.blocks[0].attn_scale.data.mul_(2.0)      # a different "graph state" during warmup
            return lambda: (self.events.append(("exit",)), m.blocks[0].attn_scale.data.mul_(0.5))

        return [enter]

    @hookimpl
    def golf_on_train_start(self, model):
        self.events.append(("start",))

    @hookimpl
    def golf_on_step_end(self, model, progress):
        self.events.append(("step", progress.step, progress.frac, progress.lr_mul))

    @hookimpl
    def golf_on_train_end(self, model):
        self.events.append(("end",))


def test_hooks_and_progress(data):
    rec = Recorder()
    ctx = _ctx(data, [("recorder", rec)], iterations=6, warmdown_iters=3)
    train(build_model(ctx, seed=SEED), ctx)
    assert rec.events[0] == ("start",) and rec.events[-1] == ("end",)
    steps = [e for e in rec.events if e[0] == "step"]
    assert [e[1] for e in steps] == [1, 2, 3, 4, 5, 6]
    assert [e[2] for e in steps] == pytest.approx([s / 6 for s in range(1, 7)])
    assert [e[3] for e in steps] == pytest.approx([1, 1, 1, 1, 2 / 3, 1 / 3])


def test_compile_warmup_is_undone(data):
    ctx0 = _ctx(data, iterations=4, warmup_steps=0)
    m0 = build_model(ctx0, seed=SEED)
    train(m0, ctx0)
    rec = Recorder(warm=True)
    ctx1 = _ctx(data, [("recorder", rec)], iterations=4, warmup_steps=3)
    m1 = build_model(ctx1, seed=SEED)
    r1 = train(m1, ctx1)
    # warmup ran (and its extra pass), then model, optimizers and loader were reset
    assert [e[0] for e in rec.events[:4]] == ["compile_warmup", "enter", "exit", "start"]
    assert max_abs_diff(flat_params(m0), flat_params(m1)) == 0.0
    assert r1.warmup_seconds > 0 and r1.steps == 4


def test_logging_lines_and_metrics(data):
    ctx = _ctx(data, iterations=4, log_every=2)
    train(build_model(ctx, seed=SEED), ctx)
    lines = [l for l in ctx.log.lines if l.startswith("step:")]
    assert [l.split()[0] for l in lines] == ["step:2/4", "step:4/4"]
    for key in ("train_loss:", "lr_mul:", "train_time:", "step_avg:", "tok/s:"):
        assert key in lines[0]
    ev = [e for e in ctx.log.events if e["event"] == "train"]
    assert [e["step"] for e in ev] == [2, 4]
    assert {"train_loss", "lr_mul", "tok_s", "train_time_s", "muon_momentum"} <= set(ev[0])


def test_in_loop_validation(data):
    seen = []

    def evaluate(model):
        seen.append(model.training)
        return {"val_loss": 1.5, "val_bpb": 0.5}

    ctx = _ctx(data, iterations=5, val_loss_every=2)
    res = train(build_model(ctx, seed=SEED), ctx, evaluate=evaluate)
    assert [v["step"] for v in res.val_history] == [0, 2, 4, 5]     # step 0, every 2, last
    assert res.val_history[-1]["val_bpb"] == 0.5
    assert [e["step"] for e in ctx.log.events if e["event"] == "val"] == [0, 2, 4, 5]
    ctx = _ctx(data, iterations=3, val_loss_every=0)
    assert train(build_model(ctx, seed=SEED), ctx, evaluate=evaluate).val_history == []


def test_wallclock_cap_stops_all_ranks(data):
    ctx = _ctx(data, iterations=50, max_wallclock_seconds=1e-6, log_every=10)
    res = train(build_model(ctx, seed=SEED), ctx)
    assert res.steps == 1 and res.stopped_by == "wallclock"
    assert res.losses and res.losses[-1][0] == 1            # the final step is always logged
    assert any(l.startswith("stopping_early: wallclock_cap") for l in ctx.log.lines)


def test_batch_geometry_errors():
    t = tiny_recipe().train
    assert grad_accum_steps(t, 1) == 8 and grad_accum_steps(t, 2) == 4 and grad_accum_steps(t, 8) == 1
    with pytest.raises(RecipeError, match="does not divide 8"):
        grad_accum_steps(t, 3)
    assert grad_accum_steps(tiny_recipe(grad_accum_steps=3).train, 3) == 3
    assert micro_batch_tokens(t, 2, 4) == 256
    with pytest.raises(RecipeError, match="train_seq_len 32"):
        micro_batch_tokens(tiny_recipe(train_batch_tokens=2000).train, 1, 8)


class MuonEqR:
    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="muon-eq-r"))

    @hookimpl
    def golf_configure_optimizers(self, optimizers):
        for g in optimizers["muon"].param_groups:
            g["row_normalize"], g["weight_decay"] = True, 0.085


def test_configure_optimizers_transform(data):
    ctx = _ctx(data, [("muon-eq-r", MuonEqR())])
    opt = configure_optimizers(build_model(ctx, seed=SEED), ctx)
    assert opt["muon"].param_groups[0]["row_normalize"] is True
    assert opt["muon"].param_groups[0]["weight_decay"] == 0.085


# ---- resume (in-process crash; the SIGKILL version is in test_train_checkpoint.py) -------------

class Noisy:
    """Uses every RNG each step and keeps a state, so an inexact resume shows."""

    def __init__(self, crash_at=None):
        self.crash_at = crash_at
        self.total = torch.zeros(())
        self.count = 0

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="noisy"))

    @hookimpl
    def golf_on_train_start(self, model):
        self.total = torch.zeros(())            # reset here; a resume must restore it afterwards
        self.count = 0

    @hookimpl
    def golf_on_step_end(self, model, progress):
        noise = torch.randn(()) + float(np.random.rand()) + random.random()
        with torch.no_grad():
            model.skips.skip_weights.add_(1e-3 * noise)
        self.total = self.total + noise
        self.count += 1
        if self.crash_at is not None and progress.step == self.crash_at:
            raise RuntimeError("simulated crash")

    @hookimpl
    def golf_state_dict(self):
        return {"total": self.total.clone(), "count": self.count}

    @hookimpl
    def golf_load_state_dict(self, state):
        self.total = state["total"].clone()
        self.count = int(state["count"])


def _run_noisy(data, out_dir, crash_at=None, resume=None, iterations=7):
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    noisy = Noisy(crash_at)
    ctx = _ctx(data, [("noisy", noisy)], out_dir=out_dir, iterations=iterations, checkpoint_every=2,
               warmup_steps=1, warmdown_iters=4)
    model = build_model(ctx, seed=SEED)
    res = train(model, ctx, resume_from=resume)
    return model, noisy, res


def test_resume_after_crash_is_exact(data, tmp_path):
    m_full, n_full, r_full = _run_noisy(data, tmp_path / "full")
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run_noisy(data, tmp_path / "crashed", crash_at=5)
    ckpts = sorted(p.name for p in (tmp_path / "crashed" / "checkpoints").glob("step_*"))
    assert ckpts == ["step_0000002", "step_0000004"]
    m_res, n_res, r_res = _run_noisy(data, tmp_path / "crashed", resume=tmp_path / "crashed")
    assert r_res.resumed_step == 4 and r_res.steps == 7
    assert max_abs_diff(flat_params(m_full), flat_params(m_res)) == 0.0
    assert n_res.count == n_full.count == 7 and torch.equal(n_res.total, n_full.total)
    assert r_res.losses == r_full.losses
    # keep_checkpoints=2: only the two newest remain
    assert sorted(p.name for p in (tmp_path / "crashed" / "checkpoints").glob("step_*")) == ["step_0000004", "step_0000006"]


def test_resume_errors(data, tmp_path):
    ctx = _ctx(data, iterations=2)
    with pytest.raises(GolfError, match="no complete checkpoint"):
        train(build_model(ctx, seed=SEED), ctx, resume_from=tmp_path)
    ctx = _ctx(data, iterations=2, checkpoint_every=1)
    with pytest.raises(GolfError, match="no output folder"):
        train(build_model(ctx, seed=SEED), ctx)
