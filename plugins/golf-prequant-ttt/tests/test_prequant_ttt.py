"""prequant-ttt: sequences and slices by brute force, the AdamW loop against a hand-written
float64 AdamW, the epoch schedule against torch's CosineAnnealingLR, the clock budget, and the
plugin's data sources (a validation read is recorded through ctx.read_validation)."""
from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from golf_core.config import TrainSection
from golf_core.data.shards import write_shard
from golf_core.model import GPT, GPTConfig
from golf_core.stash import Stash
from golf_prequant_ttt import PrequantConfig, epoch_lr, prequant_adapt, rank_sequences, training_slice
from golf_prequant_ttt import plugin

VOCAB = 40


def tiny_gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=VOCAB, num_layers=3, model_dim=16, num_heads=2, num_kv_heads=1,
                         tied_embed_init_std=0.3)).double()


def test_rank_sequences_brute_force():
    toks = torch.arange(100)
    for W in (1, 3):
        got = [rank_sequences(toks, 8, r, W) for r in range(W)]
        xs = torch.cat([g[0] for g in got])
        assert xs.shape == (12, 8)
        for i in range(12):
            assert torch.equal(xs[i], toks[i * 8:(i + 1) * 8])
            assert torch.equal(torch.cat([g[1] for g in got])[i], toks[i * 8 + 1:(i + 1) * 8 + 1])


def test_training_slice_is_the_tail_of_the_chosen_shard(tmp_path):
    for i in range(3):
        write_shard(tmp_path / f"fineweb_train_00000{i}.bin", np.arange(1000 * i, 1000 * i + 500, dtype=np.uint16))
    files = sorted(tmp_path.glob("*.bin"), reverse=True)
    t = training_slice(files, 99)
    assert torch.equal(t, torch.arange(2400, 2500))
    assert torch.equal(training_slice(files, 10, shard=0), torch.arange(489, 500))
    assert training_slice(files, 10_000, shard=1).numel() == 500


def test_epoch_lr_matches_torch_cosine_annealing():
    cfg = PrequantConfig(epochs=6, lr=5e-4)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs, eta_min=cfg.lr * 0.1)
    for e in range(cfg.epochs):
        # bitwise: the closed form is 1 ulp off at epochs 4 and 5 (#1306's scheduler is the recursion)
        assert epoch_lr(e, cfg) == opt.param_groups[0]["lr"]
        assert epoch_lr(e, cfg) == pytest.approx(0.1 * cfg.lr + 0.9 * cfg.lr * 0.5 * (1 + math.cos(math.pi * e / cfg.epochs)), rel=1e-12)
        opt.step(); sched.step()
    assert epoch_lr(3, PrequantConfig(cosine=False)) == 5e-4


def reference(model, x, y, cfg):
    """float64: AdamW (betas 0.9/0.999, eps 1e-8) written out, frozen blocks skipped, clip by hand."""
    model = copy.deepcopy(model)
    matrices = ("attn.c_q.weight", "attn.c_k.weight", "attn.c_v.weight", "attn.proj.weight", "mlp.fc.weight", "mlp.proj.weight")
    params = [p for n, p in model.named_parameters()
              if not any(n.startswith(f"blocks.{i}.") for i in range(cfg.freeze_blocks))
              or (not cfg.freeze_matrices and n.endswith(matrices))]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    t = 0
    for e in range(cfg.epochs):
        lr = 0.1 * cfg.lr + 0.9 * cfg.lr * 0.5 * (1 + math.cos(math.pi * e / cfg.epochs))
        for b in range(0, x.shape[0], cfg.batch_seqs):
            for p in model.parameters():
                p.grad = None
            model(x[b:b + cfg.batch_seqs], y[b:b + cfg.batch_seqs]).backward()
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            norm = math.sqrt(sum(float((g * g).sum()) for g in grads))
            scale = min(1.0, cfg.grad_clip / (norm + 1e-6))
            t += 1
            with torch.no_grad():
                for i, (p, g) in enumerate(zip(params, grads)):
                    g = g * scale
                    m[i] = 0.9 * m[i] + 0.1 * g
                    v[i] = 0.999 * v[i] + 0.001 * g * g
                    p -= lr * (m[i] / (1 - 0.9 ** t)) / ((v[i] / (1 - 0.999 ** t)).sqrt() + 1e-8)
    return model


@pytest.mark.parametrize("freeze_matrices", [True, False])
def test_adapt_matches_hand_written_adamw(freeze_matrices):
    model = tiny_gpt()
    toks = torch.from_numpy(np.random.default_rng(0).integers(0, VOCAB, 5 * 12 + 1))
    x, y = rank_sequences(toks, 12)
    cfg = PrequantConfig(epochs=3, lr=3e-3, freeze_blocks=1, batch_seqs=2, grad_clip=0.3, freeze_matrices=freeze_matrices)
    ref = reference(model, x, y, cfg)
    # #1306/#1423 (freeze_matrices off): block 0's scales and gains stay, its matrices train
    frozen = [p for n, p in model.blocks[0].named_parameters() if freeze_matrices or p.ndim < 2 or n == "resid_mix"]
    moving = [p.clone() for n, p in model.blocks[0].named_parameters() if not freeze_matrices and p.ndim == 2 and n != "resid_mix"]
    assert len(moving) == (0 if freeze_matrices else 6)
    frozen_before = [p.clone() for p in frozen]
    stats = prequant_adapt(model, x, y, cfg)
    # GPT.forward takes its CE on logits.float(): float32 rounding of the gradients, which Adam's
    # normalisation passes through at ~1e-7 of a step (steps here are ~3e-3)
    for (n, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7, msg=n)
    for a, b in zip(frozen_before, frozen):
        assert torch.equal(a, b)
    now = [p for n, p in model.blocks[0].named_parameters() if not freeze_matrices and p.ndim == 2 and n != "resid_mix"]
    assert all(not torch.equal(a, b) for a, b in zip(moving, now))
    assert all(p.requires_grad for p in model.parameters())
    assert stats.steps == 9 and stats.epochs_done == 3 and len(stats.epoch_loss) == 3
    assert stats.epoch_loss[-1] < stats.epoch_loss[0]


def test_deadline_stops_between_steps():
    model = tiny_gpt()
    x, y = rank_sequences(torch.arange(49) % VOCAB, 12)
    before = [p.clone() for p in model.parameters()]
    stats = prequant_adapt(model, x, y, PrequantConfig(epochs=2), deadline_s=0.0)
    assert stats.steps == 0 and stats.stopped_by_deadline
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_clock_budget():
    capped = TrainSection(max_wallclock_seconds=600.0, reserve_seconds=20.0)
    free = TrainSection(max_wallclock_seconds=0.0)
    o = plugin.PrequantTTTOptions(data="train")
    assert plugin.clock_budget(o, capped, 580.5) == pytest.approx(7.5)
    assert plugin.clock_budget(o.model_copy(update={"max_seconds": 3.0}), capped, 580.5) == 3.0
    assert plugin.clock_budget(o, free, 123.0) is None
    assert plugin.clock_budget(plugin.PrequantTTTOptions(data="val"), capped, 580.5) is None


class Log:
    def __init__(self):
        self.lines, self.metrics = [], []

    def info(self, msg):
        self.lines.append(msg)

    def metric(self, **kw):
        self.metrics.append(kw)


def fake_ctx(tmp_path, val):
    write_shard(tmp_path / "fineweb_train_000000.bin", (np.arange(3000) % VOCAB).astype(np.uint16))
    reads = []

    def read_validation(reason):
        reads.append(reason)
        return val

    recipe = SimpleNamespace(train=TrainSection(max_wallclock_seconds=0.0, train_seq_len=12))
    return SimpleNamespace(recipe=recipe, read_validation=read_validation, reads=reads, stash=Stash(), log=Log(),
                           data=SimpleNamespace(train_files=[tmp_path / "fineweb_train_000000.bin"]),
                           rank=0, world_size=1, device=torch.device("cpu"), autocast=lambda: torch.autocast("cpu", enabled=False))


@pytest.mark.parametrize("data", ["val", "train"])
def test_plugin_reads_the_declared_data(tmp_path, data):
    val = torch.from_numpy(np.random.default_rng(1).integers(0, VOCAB, 12 * 4 + 1))
    ctx = fake_ctx(tmp_path, val)
    opts = plugin.PrequantTTTOptions(data=data, epochs=1, train_tokens=48, batch_seqs=4)
    model = tiny_gpt()
    out = plugin.golf_pre_quant(model, ctx, opts)
    assert out is model
    assert (len(ctx.reads) == 1) == (data == "val")
    st = ctx.stash[plugin.STATS]
    assert st["tokens"] == 49 and st["steps"] == 1 and not st["skipped"]
    got = []
    plugin.golf_register(got.append)
    assert got[0].track_for(opts) == ("trains-on-val" if data == "val" else "fixed-predictor")
    result = {}
    plugin.golf_summary(result, ctx, opts)
    assert result["prequant-ttt"]["data"] == data


def test_defaults_and_tiny():
    got = []
    plugin.golf_register(got.append)
    info = got[0]
    o = plugin.PrequantTTTOptions()
    assert (o.data, o.epochs, o.lr, o.freeze_blocks, o.batch_seqs, o.grad_clip) == ("val", 6, 5e-4, 2, 32, 1.0)
    assert info.legality == "trains-on-val"
    recipe = SimpleNamespace(train=SimpleNamespace(train_seq_len=128))
    assert info.tiny(o, recipe).train_tokens == 64 * 128
