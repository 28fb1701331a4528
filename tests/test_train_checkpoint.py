"""Checkpoints: atomic writes, safe loading, and exact resume after a SIGKILL.

The SIGKILL tests run this file as a worker script in a subprocess (``python
tests/test_train_checkpoint.py <mode> <out> <shards>``), kill it, resume in-process and
compare with an uninterrupted run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from golf_core.errors import GolfError
from golf_core.train.checkpoint import (
    LATEST, find_checkpoint, from_plain, latest_checkpoint, load_checkpoint, save_checkpoint, to_plain,
)

REPO = Path(__file__).resolve().parent.parent
ITERS, EVERY = 8, 2


# ---- the run shared by the worker and the tests -------------------------------------------------

def _plugins(kill_mode=None):
    from golf_core import TechniqueInfo, hookimpl

    class Noise:
        """Consumes torch RNG each step and keeps state (so RNG and plugin restore matter)."""

        def __init__(self):
            self.total = torch.zeros(())

        @hookimpl
        def golf_register(self, register):
            register(TechniqueInfo(name="noise"))

        @hookimpl
        def golf_on_step_end(self, model, progress):
            n = torch.randn(())
            with torch.no_grad():
                model.skips.skip_weights.add_(1e-3 * n)
            self.total = self.total + n
            if kill_mode == "block" and progress.step == 5:
                time.sleep(120)                      # the parent SIGKILLs us here

        @hookimpl
        def golf_state_dict(self):
            return {"total": self.total.clone()}

        @hookimpl
        def golf_load_state_dict(self, state):
            self.total = state["total"].clone()

    return [("noise", Noise())]


def run(out_dir: Path, shards: Path, resume=None, kill_mode=None):
    """Train the tiny model for ITERS steps with a checkpoint every EVERY steps."""
    from golf_core.data.paths import DataPaths
    from golf_core.train import train
    from golf_core.train.testing import build_model, heldout_loss, make_train_context, tiny_recipe

    torch.manual_seed(0)
    files = sorted(shards.glob("fineweb_train_*.bin"))
    data = DataPaths(dataset_dir=shards, tokenizer_path=shards / "none.model", train_files=files,
                     val_files=sorted(shards.glob("fineweb_val_*.bin")), name="synthetic", vocab_size=64)
    recipe = tiny_recipe(iterations=ITERS, checkpoint_every=EVERY, warmup_steps=1, warmdown_iters=4,
                         grad_clip_norm=1.0)
    ctx = make_train_context(recipe, _plugins(kill_mode), data=data, out_dir=out_dir)
    model = build_model(ctx, seed=7)
    res = train(model, ctx, resume_from=resume)
    return model, res, heldout_loss(model, data, 32)


def _worker(mode: str, out: str, shards: str) -> None:
    torch.set_num_threads(1)
    if mode == "mid_write":
        import golf_core.train.checkpoint as C

        real = C._save_file
        calls = {"n": 0}

        def torn(path, obj):
            calls["n"] += 1
            if calls["n"] == 3:              # checkpoint 2 (step 4): rank0.pt, then shared.pt torn
                import io

                buf = io.BytesIO()
                torch.save(obj, buf)
                with open(path.with_name(path.name + ".part"), "wb") as fh:
                    fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                    fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            real(path, obj)

        C._save_file = torn
    run(Path(out), Path(shards), kill_mode="block" if mode == "block" else None)


# ---- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    from golf_core.train.testing import synthetic_shards

    d = tmp_path_factory.mktemp("ckpt_shards")
    synthetic_shards(d, 64)
    return d


@pytest.fixture(scope="module")
def uninterrupted(shards, tmp_path_factory):
    from golf_core.train.testing import flat_params

    model, res, val = run(tmp_path_factory.mktemp("full"), shards)
    return flat_params(model), res, val


def _spawn(mode, out, shards):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), mode, str(out), str(shards)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _check_resume(out, shards, uninterrupted, expect_from):
    from golf_core.train.testing import flat_params, max_abs_diff

    ref_params, ref_res, ref_val = uninterrupted
    assert find_checkpoint(out).name == expect_from
    model, res, val = run(out, shards, resume=out)
    assert res.resumed_step == int(expect_from.split("_")[1]) and res.steps == ITERS
    assert max_abs_diff(flat_params(model), ref_params) <= 1e-6
    assert abs(val - ref_val) <= 1e-6
    assert res.losses == ref_res.losses


# ---- SIGKILL ---------------------------------------------------------------------------------------

def test_sigkill_after_a_checkpoint_then_resume_is_exact(shards, uninterrupted, tmp_path):
    out = tmp_path / "run"
    proc = _spawn("block", out, shards)
    latest = out / "checkpoints" / LATEST
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if latest.is_file() and latest.read_text().strip() == "step_0000004":
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
    time.sleep(0.3)                                 # it is now blocked in step 5
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    _check_resume(out, shards, uninterrupted, "step_0000004")


def test_sigkill_mid_write_keeps_the_last_good_checkpoint(shards, uninterrupted, tmp_path):
    out = tmp_path / "run"
    proc = _spawn("mid_write", out, shards)
    rc = proc.wait(timeout=180)
    assert rc == -signal.SIGKILL, proc.stdout.read().decode()[-2000:]
    root = out / "checkpoints"
    assert (root / ".step_0000004.tmp").is_dir()               # the torn write stayed hidden
    assert (root / LATEST).read_text().strip() == "step_0000002"
    _check_resume(out, shards, uninterrupted, "step_0000002")
    assert not (root / ".step_0000004.tmp").exists()           # cleaned by the next save


# ---- unit tests --------------------------------------------------------------------------------------

def test_plain_roundtrip_with_numpy():
    state = {"a": np.arange(5, dtype=np.uint32), "b": [np.int64(3), (1.5, "x")], "t": torch.ones(2),
             "n": None, 3: {"deep": np.float32(2.0)}}
    plain = to_plain(state)
    back = from_plain(plain)
    assert back["a"].dtype == np.uint32 and back["a"].tolist() == [0, 1, 2, 3, 4]
    assert back["b"] == [3, (1.5, "x")] and back[3]["deep"] == 2.0 and torch.equal(back["t"], torch.ones(2))


def test_plain_rejects_objects_naming_the_key():
    with pytest.raises(GolfError, match=r"state\.plugins\.ema\.fn"):
        to_plain({"plugins": {"ema": {"fn": lambda: 0}}})


def test_save_load_layout_and_pruning(tmp_path):
    root = tmp_path / "checkpoints"
    for step in (1, 2, 3):
        save_checkpoint(root, step, {"step": step, "x": torch.full((2,), float(step))},
                        {"model": {"w": torch.zeros(1)}}, keep_last=2)
    assert sorted(p.name for p in root.iterdir()) == [LATEST, "step_0000002", "step_0000003"]
    meta = json.loads((root / "step_0000003" / "meta.json").read_text())
    assert meta["step"] == 3 and meta["world_size"] == 1 and meta["version"] == 1
    state, shared, meta = load_checkpoint(tmp_path)            # a run folder works too
    assert latest_checkpoint(tmp_path) == latest_checkpoint(root) == root / "step_0000003"
    assert state["step"] == 3 and torch.equal(state["x"], torch.full((2,), 3.0))
    assert torch.equal(shared["model"]["w"], torch.zeros(1))
    # a stale .tmp and a LATEST pointing at a missing folder fall back to the newest complete one
    (root / ".step_0000009.tmp").mkdir()
    (root / LATEST).write_text("step_0000042\n")
    assert latest_checkpoint(root).name == "step_0000003"


def test_load_errors(tmp_path):
    root = tmp_path / "c"
    ck = save_checkpoint(root, 1, {"step": 1}, {"model": {}})
    with pytest.raises(GolfError, match="same number"):
        load_checkpoint(ck, rank=0, world_size=2)
    meta = json.loads((ck / "meta.json").read_text())
    (ck / "meta.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(GolfError, match="format version 99"):
        load_checkpoint(ck)
    (ck / "meta.json").write_text(json.dumps(meta))
    (ck / "rank0.pt").write_bytes(b"garbage")
    with pytest.raises(GolfError, match="rank0.pt.*unreadable"):
        load_checkpoint(ck)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_CHECKPOINT",))


def test_crafted_checkpoint_runs_no_code(tmp_path):
    ck = save_checkpoint(tmp_path, 1, {"step": 1}, {"model": {}})
    torch.save({"step": _Evil()}, ck / "rank0.pt")
    with pytest.raises(GolfError, match="unreadable"):
        load_checkpoint(ck)
    assert not (Path.cwd() / "PWNED_BY_CHECKPOINT").exists()


if __name__ == "__main__":
    _worker(*sys.argv[1:4])
