"""score-first-ttt against a float64 brute-force reference (window-by-window scoring, hand-written
SGD with momentum and clipping), the flip test, the ledger certificate, options."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from golf_core.data.tokenizer import ByteLuts
from golf_core.errors import GolfError
from golf_core.eval import EvalSession
from golf_core.model import GPT, GPTConfig
from golf_core.api import trainable_parameters
from golf_score_first_ttt import TTTConfig, certify_ledger, chunk_lr, score_first_ttt
from golf_score_first_ttt import plugin

VOCAB, SEQ, STRIDE = 48, 16, 8


def luts():
    g = np.random.default_rng(1)
    return ByteLuts(g.integers(1, 5, VOCAB).astype(np.int16), g.random(VOCAB) < 0.4, np.zeros(VOCAB, bool))


def tiny_gpt():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=VOCAB, num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1, tied_embed_init_std=0.3))
    return m.double()


def stream(n=100, seed=3):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, VOCAB, n))


def reference(model, toks, cfg):
    """Brute force: chunk c = targets [cC, (c+1)C); score each window of the chunk alone; then
    SGD(momentum) by hand on the chunk's non-overlapping sequences."""
    model = copy.deepcopy(model)
    N = toks.numel() - 1
    C, T, S = cfg.chunk_tokens, SEQ, STRIDE
    starts = [ws for ws in range(0, N, S) if ws + (T - S) < N or ws == 0]
    nC = math.ceil(N / C)
    nll = np.full(N, np.nan)
    params = [p for n, p in model.named_parameters() if not any(n.startswith(f"blocks.{i}.") for i in range(cfg.freeze_blocks))]
    bufs = [None] * len(params)
    for c in range(nC):
        for ws in starts:
            s = 0 if ws == 0 else T - S
            if min((ws + s) // C, nC - 1) != c:
                continue
            wl = min(T, N - ws)
            with torch.no_grad():
                logits = model.forward_logits(toks[ws:ws + wl][None])[0]
            ce = F.cross_entropy(logits, toks[ws + 1:ws + wl + 1], reduction="none").numpy()
            nll[ws + s: ws + wl] = ce[s:wl]
        if c == nC - 1:
            continue
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * c / (nC - 1)))
        chunk = toks[c * C: min((c + 1) * C, N) + 1]
        n = (chunk.numel() - 1) // T
        x, y = chunk[: n * T].reshape(n, T), chunk[1: n * T + 1].reshape(n, T)
        for _ in range(cfg.epochs):
            for b in range(0, n, cfg.batch_seqs):
                for p in params:
                    p.grad = None
                model(x[b:b + cfg.batch_seqs], y[b:b + cfg.batch_seqs]).backward()
                grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
                norm = math.sqrt(sum(float((g * g).sum()) for g in grads))
                scale = min(1.0, cfg.grad_clip / (norm + 1e-6)) if cfg.grad_clip else 1.0
                with torch.no_grad():
                    for i, (p, g) in enumerate(zip(params, grads)):
                        g = g * scale
                        bufs[i] = g.clone() if bufs[i] is None else cfg.momentum * bufs[i] + g
                        p -= lr * bufs[i]
    return nll, model


@pytest.mark.parametrize("freeze", [0, 1])
def test_matches_brute_force_reference(freeze):
    model, toks = tiny_gpt(), stream()
    cfg = TTTConfig(chunk_tokens=32, lr=0.05, epochs=2, batch_seqs=1, freeze_blocks=freeze, grad_clip=0.5)
    ref_nll, ref_model = reference(model, toks, cfg)
    sess = EvalSession(toks, luts(), SEQ, STRIDE, batch_seqs=3)
    stats = score_first_ttt(model, sess, cfg)
    assert (sess.coverage == 1).all()
    np.testing.assert_allclose(sess.nll, ref_nll, rtol=1e-9, atol=1e-11)
    for (n, p), q in zip(model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-11, msg=n)
    assert stats.updates == 3 and stats.chunks == 4 and stats.steps == 3 * 2 * 2
    assert all(p.requires_grad for p in model.parameters())
    ok, why = certify_ledger(sess.ledger)
    assert ok, why
    updates = [e for e in sess.ledger if e["event"] == "update"]
    assert [u["targets"] for u in updates] == [[0, 32], [32, 64], [64, 96]]


def test_flip_test_no_earlier_score_moves():
    """Changing stream token t + 1 (target t) leaves the score of every target < t unchanged."""
    cfg = TTTConfig(chunk_tokens=32, lr=0.1, epochs=1, batch_seqs=2)
    out = []
    toks = stream()
    for t in (None, 40, 70):
        x = toks.clone()
        if t is not None:
            x[t + 1] = (x[t + 1] + 5) % VOCAB
        sess = EvalSession(x, luts(), SEQ, STRIDE, batch_seqs=4)
        score_first_ttt(tiny_gpt(), sess, cfg)
        out.append((t, sess.nll.copy()))
    base = out[0][1]
    for t, nll in out[1:]:
        np.testing.assert_array_equal(nll[:t], base[:t])
        assert np.abs(nll[t:] - base[t:]).max() > 0


def test_chunk_must_be_a_multiple_of_the_sequence_length():
    sess = EvalSession(stream(), luts(), SEQ, STRIDE)
    with pytest.raises(GolfError, match="multiple"):
        score_first_ttt(tiny_gpt(), sess, TTTConfig(chunk_tokens=40))


def test_ledger_certificate_rejects_bad_orders():
    good = [{"event": "score", "state_version": 0, "targets": [0, 32]},
            {"event": "update", "state_version": 0, "targets": [0, 32]},
            {"event": "score", "state_version": 1, "targets": [32, 64]}]
    assert certify_ledger(good)[0]
    assert not certify_ledger([good[1]])[0]                                           # update before score
    assert not certify_ledger(good[:2] + [{"event": "score", "state_version": 1, "targets": [30, 40]}])[0]
    assert not certify_ledger(good[:1] + [{"event": "update", "state_version": 0, "targets": [0, 40]}])[0]


def test_chunk_lr_and_frozen_blocks():
    assert chunk_lr(0, 5, 0.005) == pytest.approx(0.005)
    assert chunk_lr(2, 5, 0.005) == pytest.approx(0.0025)
    assert chunk_lr(4, 5, 0.005) == pytest.approx(0.0, abs=1e-15)
    m = tiny_gpt()
    got = {id(p) for p in trainable_parameters(m, 1)}
    assert not any(id(p) in got for p in m.blocks[0].parameters())
    assert all(id(p) in got for p in m.blocks[1].parameters()) and id(m.tok_emb.weight) in got


def test_plugin_defaults_tiny_and_registration():
    got = []
    plugin.golf_register(got.append)
    info = got[0]
    assert info.name == "score-first-ttt" and info.legality == "score-first" and "#1413" in info.lineage
    o = plugin.ScoreFirstTTTOptions()
    assert (o.chunk_tokens, o.lr, o.epochs, o.momentum, o.grad_clip, o.freeze_blocks, o.batch_seqs) == (32768, 0.005, 3, 0.9, 1.0, 0, 32)

    class R:
        class eval:
            seq_len = 128
    t = info.tiny(o, R)
    assert t.chunk_tokens == 2048 and info.tiny(t, R).chunk_tokens == 2048


def test_float32_updates_are_the_records_sgd_bitwise():
    """In float32 on one rank the updates are, bit for bit, #1413's step: mean-loss ``backward()``,
    ``clip_grad_norm_``, ``torch.optim.SGD(momentum)``, here with 3 x 16 = 48 targets per micro-batch
    (not a power of two: a ``loss * count`` backward divided by ``count`` rounds differently)."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=VOCAB, num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1,
                          tied_embed_init_std=0.3)).float()
    ref = copy.deepcopy(model)
    toks = stream(n=200, seed=5)
    cfg = TTTConfig(chunk_tokens=96, lr=0.05, epochs=2, batch_seqs=3, grad_clip=0.5)
    score_first_ttt(model, EvalSession(toks, luts(), SEQ, STRIDE, batch_seqs=3), cfg)
    N, C = toks.numel() - 1, cfg.chunk_tokens
    nC = math.ceil(N / C)
    opt = torch.optim.SGD(list(ref.parameters()), lr=cfg.lr, momentum=cfg.momentum)
    for c in range(nC - 1):
        for g in opt.param_groups:
            g["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * c / (nC - 1)))
        chunk = toks[c * C: (c + 1) * C + 1]
        n = (chunk.numel() - 1) // SEQ
        x, y = chunk[: n * SEQ].reshape(n, SEQ), chunk[1: n * SEQ + 1].reshape(n, SEQ)
        for _ in range(cfg.epochs):
            for b in range(0, n, cfg.batch_seqs):
                opt.zero_grad(set_to_none=True)
                ref(x[b:b + cfg.batch_seqs], y[b:b + cfg.batch_seqs]).backward()
                torch.nn.utils.clip_grad_norm_(list(ref.parameters()), cfg.grad_clip)
                opt.step()
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        assert torch.equal(p, q), name
