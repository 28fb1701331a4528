"""slot: the inner AdamW loop against a float64 numpy reference (analytic gradient, hand-written
AdamW), the session flow against a per-window reference, and its non-causality."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from golf_core.data.tokenizer import ByteLuts
from golf_core.eval import EvalSession
from golf_core.model import GPT, GPTConfig
from golf_slot import SlotConfig, SoftcapHead, cosine_lr, head_of, optimize_slot, slot_evaluate, slot_nll
from golf_slot import plugin

V, D, CAP = 23, 6, 30.0


def ref_slot(H, Y, M, W, cfg, cap=CAP):
    """float64 numpy SLOT: analytic CE-through-softcap gradient, torch's AdamW written out."""
    B, T, d = H.shape
    n = B if cfg.per_sample else 1
    delta = np.zeros((n, d))
    bias = np.zeros((n, W.shape[0]))
    m = [np.zeros_like(delta), np.zeros_like(bias)]
    v = [np.zeros_like(delta), np.zeros_like(bias)]
    rows, cols = np.nonzero(M)
    N = len(rows)
    for t in range(cfg.steps):
        lr = cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * t / cfg.steps))
        gd, gb = np.zeros_like(delta), np.zeros_like(bias)
        for r, c in zip(rows, cols):
            k = r if cfg.per_sample else 0
            pre = (H[r, c] + delta[k]) @ W.T + (bias[k] if cfg.logit_bias else 0)
            th = np.tanh(pre / cap)
            z = cap * th
            p = np.exp(z - z.max()); p /= p.sum()
            g = p.copy(); g[Y[r, c]] -= 1
            g = g * (1 - th ** 2) / N
            gd[k] += g @ W
            gb[k] += g
        params = [delta, bias] if cfg.logit_bias else [delta]
        grads = [gd, gb]
        for i, (P_, G) in enumerate(zip(params, grads)):
            P_ *= 1 - lr * cfg.weight_decay
            m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * G
            v[i] = cfg.beta2 * v[i] + (1 - cfg.beta2) * G * G
            mh = m[i] / (1 - cfg.beta1 ** (t + 1))
            vh = v[i] / (1 - cfg.beta2 ** (t + 1))
            P_ -= lr * mh / (np.sqrt(vh) + cfg.eps)
    return delta, bias


def data(B=3, T=9, seed=0):
    g = np.random.default_rng(seed)
    H = g.normal(size=(B, T, D))
    W = g.normal(size=(V, D)) * 2.0
    Y = g.integers(0, V, size=(B, T))
    M = np.zeros((B, T), bool)
    M[0, :] = True
    M[1:, -3:] = True
    return H, W, Y, M


@pytest.mark.parametrize("per_sample,bias", [(True, True), (False, False), (True, False)])
def test_optimize_matches_float64_reference(per_sample, bias):
    H, W, Y, M = data()
    cfg = SlotConfig(steps=5, lr=0.05, lr_min=0.005, per_sample=per_sample, logit_bias=bias)
    head = SoftcapHead(torch.from_numpy(W), CAP)
    d, b = optimize_slot(torch.from_numpy(H), torch.from_numpy(Y), torch.from_numpy(M), head, V, cfg)
    rd, rb = ref_slot(H, Y, M, W, cfg)
    np.testing.assert_allclose(d[:, 0].numpy(), rd, rtol=1e-9, atol=1e-12)
    if bias:
        np.testing.assert_allclose(b[:, 0].numpy(), rb, rtol=1e-9, atol=1e-12)
    else:
        assert b is None


def test_cosine_schedule_endpoints():
    assert cosine_lr(0, 16, 0.008, 0.0008) == pytest.approx(0.008)
    assert cosine_lr(8, 16, 0.008, 0.0008) == pytest.approx(0.0044)
    assert cosine_lr(15, 16, 0.008, 0.0008) > 0.0008


def synthetic_luts(vocab):
    g = np.random.default_rng(1)
    base = g.integers(1, 5, vocab).astype(np.int16)
    return ByteLuts(base, g.random(vocab) < 0.4, np.zeros(vocab, bool))


def tiny_gpt(vocab=64):
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=vocab, num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1, tied_embed_init_std=0.5))
    return m.double().eval()


def test_session_scores_equal_per_window_reference():
    """The adapter's scores = SLOT run window by window on the model's own hidden states, and
    every target is scored once."""
    model, vocab = tiny_gpt(), 64
    toks = torch.from_numpy(np.random.default_rng(3).integers(0, vocab, 150))
    sess = EvalSession(toks, synthetic_luts(vocab), 32, 8, batch_seqs=4)
    # per-sample deltas are independent; the batch-mean loss only rescales each gradient, which
    # Adam ignores up to eps, so eps is made negligible to compare with single-window runs
    cfg = SlotConfig(steps=3, eps=1e-14)
    slot_evaluate(model, sess, cfg)
    assert (sess.coverage == 1).all()
    head = head_of(model)
    for w in range(len(sess.schedule)):
        win = sess.schedule.window(w)
        x = toks[win.start: win.start + win.length][None]
        y = toks[win.start + 1: win.start + win.length + 1][None]
        mask = torch.zeros_like(x, dtype=torch.bool)
        mask[0, win.score_from:] = True
        with torch.no_grad():
            h = model.forward_hidden(x)
        d, b = optimize_slot(h, y, mask, head, vocab, cfg)
        ref = slot_nll(h, y, mask, head, d, b).numpy()
        lo, hi = win.targets
        np.testing.assert_allclose(sess.nll[lo:hi], ref, rtol=1e-7, atol=1e-9)


def test_slot_is_not_causal():
    """Changing the last target of a window moves the scores of its earlier scored targets
    (the #1240 finding); without SLOT they do not move."""
    model, vocab = tiny_gpt(), 64
    toks = torch.from_numpy(np.random.default_rng(4).integers(0, vocab, 65))
    flipped = toks.clone()
    flipped[-1] = (flipped[-1] + 1) % vocab
    out = []
    for t in (toks, flipped):
        s = EvalSession(t, synthetic_luts(vocab), 64, 64)
        slot_evaluate(model, s, SlotConfig(steps=4, lr=0.05, lr_min=0.005))
        out.append(s.nll.copy())
    assert np.abs(out[0][:-1] - out[1][:-1]).max() > 1e-6


def test_plugin_registration():
    got = []
    plugin.golf_register(got.append)
    info = got[0]
    assert info.name == "slot" and info.legality == "not-causal" and "#1229" in info.lineage
    o = plugin.SlotOptions()
    assert (o.steps, o.lr, o.lr_min, o.mask, o.weight_decay) == (16, 0.008, 0.0008, "scored", 0.01)
