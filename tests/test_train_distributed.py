"""Two gloo processes under torchrun against one process with the same global batch.

This file is also the worker: ``python -m torch.distributed.run --standalone --nproc_per_node=2
tests/test_train_distributed.py <out> <shards>``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
ITERS = 6


def _data(shards: Path):
    from golf_core.data.paths import DataPaths

    return DataPaths(dataset_dir=shards, tokenizer_path=shards / "none.model",
                     train_files=sorted(shards.glob("fineweb_train_*.bin")),
                     val_files=sorted(shards.glob("fineweb_val_*.bin")), name="synthetic", vocab_size=64)


def run(shards: Path, out_dir=None, resume=None, **train_kw):
    """Train the tiny model; rank and world size come from torch.distributed.

    Newton-Schulz runs in float32 here so the comparison is tight; the bf16 default's
    sharding is checked bitwise by ``_muon_sharding_check``.
    """
    from golf_core.train import build_optimizers, train
    from golf_core.train.testing import build_model, make_train_context, tiny_recipe

    kw = dict(iterations=ITERS, warmup_steps=1, warmdown_iters=3, grad_clip_norm=1.0, log_every=1)
    kw.update(train_kw)
    ctx = make_train_context(tiny_recipe(**kw), data=_data(shards), out_dir=out_dir)
    model = build_model(ctx, seed=11)
    opt = build_optimizers(model, ctx.recipe.train, ctx.world_size, ctx.rank, ns_dtype=torch.float32)
    res = train(model, ctx, optimizers=opt, resume_from=resume)
    return model, res


def _muon_sharding_check() -> bool:
    """Muon over 5 matrices split across ranks equals the unsplit computation, bitwise."""
    from golf_core.train.muon import Muon

    g = torch.Generator().manual_seed(3)
    shapes = [(8, 4), (4, 8), (6, 6), (10, 3), (5, 7)]
    ps = [torch.nn.Parameter(torch.randn(s, generator=g)) for s in shapes]
    grads = [torch.randn(s, generator=g) for s in shapes]
    ref = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    for p, q, gr in zip(ps, ref, grads):
        p.grad, q.grad = gr.clone(), gr.clone()
    Muon(ps, lr=0.1).step()                                        # sharded over the group
    Muon(ref, lr=0.1, rank=0, world_size=1).step()                  # every matrix locally
    return all(torch.equal(p, q) for p, q in zip(ps, ref))


def _worker(out: str, shards: str) -> None:
    from golf_core.train.distributed import destroy_distributed, init_distributed
    from golf_core.train.testing import flat_params

    torch.set_num_threads(1)
    env = init_distributed("cpu")
    assert env.world_size == 2 and env.backend == "gloo"
    out_p, shards_p = Path(out), Path(shards)
    model, res = run(shards_p, out_dir=out_p, checkpoint_every=3)
    full = flat_params(model)
    model2, res2 = run(shards_p, out_dir=out_p, resume=out_p / "checkpoints" / "step_0000003", checkpoint_every=3)
    resumed_diff = max((full[k] - v).abs().max().item() for k, v in flat_params(model2).items())
    muon_ok = _muon_sharding_check()
    if env.rank == 0:
        torch.save(full, out_p / "params.pt")
        (out_p / "result.json").write_text(json.dumps({
            "losses": res.losses, "steps": res.steps, "accum": res.grad_accum_steps,
            "resumed_diff": resumed_diff, "resumed_losses": res2.losses, "muon_ok": muon_ok,
            "files": sorted(p.name for p in (out_p / "checkpoints" / "step_0000003").iterdir()),
        }))
    destroy_distributed()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_two_gloo_ranks_match_one_process(tmp_path):
    from golf_core.train.testing import flat_params, synthetic_shards

    shards = tmp_path / "shards"
    synthetic_shards(shards, 64)
    out = tmp_path / "ddp"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).resolve()), str(out), str(shards)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "terminate called without an active exception" in proc.stderr:
        # gloo's C++ runtime aborted a rank (seen about once in five loaded CI runs, never a wrong
        # result): run it once more rather than fail on the transport
        shutil.rmtree(out, ignore_errors=True)
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    got = json.loads((out / "result.json").read_text())

    model, res = run(shards)                        # one process, grad accumulation 8
    assert got["accum"] == 4 and res.grad_accum_steps == 8 and got["steps"] == res.steps == ITERS
    # same global batch -> same losses and weights up to float32 summation order
    np.testing.assert_allclose([l for _, l in got["losses"]], [l for _, l in res.losses], rtol=0, atol=1e-5)
    ddp_params = torch.load(out / "params.pt", weights_only=True)
    one = flat_params(model)
    worst = max((ddp_params[k] - one[k]).abs().max().item() for k in one)
    assert worst < 1e-5, worst
    # per-rank checkpoints, resumed on 2 ranks: exact
    assert got["files"] == ["meta.json", "rank0.pt", "rank1.pt", "shared.pt"]
    assert got["resumed_diff"] == 0.0
    assert got["resumed_losses"] == got["losses"]
    assert got["muon_ok"]


if __name__ == "__main__":
    _worker(*sys.argv[1:3])
