"""Run level: a training run killed after a checkpoint and resumed sees the same batches as an
uninterrupted one (the core loop's checkpoints carry the loader's state_dict)."""
from __future__ import annotations

import pytest
import torch

from golf_core import TechniqueInfo, hookimpl
from golf_core.train.loop import train
from golf_core.train import testing as T
from golf_core.train.testing import flat_params, make_train_context, max_abs_diff, synthetic_shards, tiny_recipe
from golf_coprime_loader import CoprimeLoader
from golf_coprime_loader import plugin as coprime_plugin


_build = getattr(T, "build_model", None) or getattr(T, "build_tiny_model")  # the core helper's name


class BatchSpy:
    """Records every micro-batch the loop reads after the clock starts; crashes on request."""

    def __init__(self, log, crash_at=None):
        self.log, self.crash_at, self.on = log, crash_at, False

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="batch-spy"))

    @hookimpl
    def golf_on_train_start(self):
        self.on = True

    @hookimpl
    def golf_on_step_end(self, progress):
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
    return synthetic_shards(tmp_path_factory.mktemp("shards"), 64, train_tokens=48_000, num_train_shards=12)


def _run(data, out_dir, monkeypatch, crash_at=None, resume=None):
    batches: list[torch.Tensor] = []
    spy = BatchSpy(batches, crash_at)
    orig = CoprimeLoader.next_batch

    def recording(self, local_tokens, seq_len):
        x, y = orig(self, local_tokens, seq_len)
        if spy.on:
            batches.append(x.clone())
        return x, y

    monkeypatch.setattr(CoprimeLoader, "next_batch", recording)
    recipe = tiny_recipe(iterations=9, checkpoint_every=3, warmup_steps=1, train_batch_tokens=1024)
    ctx = make_train_context(recipe, [("coprime-loader", coprime_plugin), ("batch-spy", spy)], data=data, out_dir=out_dir)
    model = _build(ctx, seed=0)
    try:
        res = train(model, ctx, resume_from=resume)
    finally:
        monkeypatch.setattr(CoprimeLoader, "next_batch", orig)
    return model, res, batches


def test_resumed_run_reads_the_same_batches(data, tmp_path, monkeypatch):
    m_full, r_full, full = _run(data, tmp_path / "full", monkeypatch)
    accum = r_full.grad_accum_steps
    assert len(full) == 9 * accum
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(data, tmp_path / "crashed", monkeypatch, crash_at=7)
    m_res, r_res, resumed = _run(data, tmp_path / "crashed", monkeypatch, resume=tmp_path / "crashed")
    assert r_res.resumed_step == 6 and r_res.steps == 9
    assert len(resumed) == 3 * accum
    for i, (a, b) in enumerate(zip(full[6 * accum:], resumed)):
        assert torch.equal(a, b), f"micro-batch {6 * accum + i}"
    assert max_abs_diff(flat_params(m_full), flat_params(m_res)) == 0.0
