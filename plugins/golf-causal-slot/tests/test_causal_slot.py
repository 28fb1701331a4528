"""causal-slot: context masks by brute force, the AdamW fit against a float64 numpy reference
(analytic gradient, AdamW written out), per-window separability, L-BFGS optimality, and the
causality test: changing a token scored by window i leaves every earlier window's delta and
scores unchanged, while the shared-delta (#1306/#1350) forms change them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from golf_causal_slot import (AdamWDeltaConfig, CausalSlotConfig, LBFGSConfig, SoftcapHead, causal_slot_evaluate,
                              context_mask, fit_hidden_delta, fit_logit_delta)
from golf_causal_slot import plugin
from golf_core.data.tokenizer import ByteLuts
from golf_core.eval import EvalSession
from golf_core.model import GPT, GPTConfig

V, D, CAP = 19, 5, 30.0


def test_context_mask_brute_force():
    g = np.random.default_rng(0)
    score = np.zeros((6, 12), bool)
    starts = [0, 4, 9, 11, 7, 12]
    for b, s in enumerate(starts):
        score[b, s:] = True
    for ct in (None, 3):
        got = context_mask(torch.from_numpy(score), ct).numpy()
        for b, s in enumerate(starts):
            for k in range(12):
                want = k < s and (ct is None or k >= s - ct)
                assert got[b, k] == want


def ref_adamw(H, Y, M, W, cfg, shared):
    """float64 numpy: per-window mean (or batch mean when shared) CE through the softcap, AdamW by hand."""
    B, T, d = H.shape
    n = 1 if shared else B
    delta = np.zeros((n, d)); m = np.zeros_like(delta); v = np.zeros_like(delta)
    rows, cols = np.nonzero(M)
    counts = M.sum(1)
    for t in range(cfg.steps):
        g_all = np.zeros_like(delta)
        for r, c in zip(rows, cols):
            k = 0 if shared else r
            pre = (H[r, c] + delta[k]) @ W.T
            th = np.tanh(pre / CAP)
            z = CAP * th
            p = np.exp(z - z.max()); p /= p.sum()
            g = p.copy(); g[Y[r, c]] -= 1
            g *= (1 - th ** 2) / (len(rows) if shared else counts[r])
            g_all[k] += g @ W
        delta *= 1 - cfg.lr * cfg.weight_decay
        m = cfg.beta1 * m + (1 - cfg.beta1) * g_all
        v = cfg.beta2 * v + (1 - cfg.beta2) * g_all ** 2
        delta -= cfg.lr * (m / (1 - cfg.beta1 ** (t + 1))) / (np.sqrt(v / (1 - cfg.beta2 ** (t + 1))) + cfg.eps)
    return delta


def batch_data(B=4, T=10, seed=0):
    g = np.random.default_rng(seed)
    H, W = g.normal(size=(B, T, D)), g.normal(size=(V, D)) * 2
    Y = g.integers(0, V, size=(B, T))
    score = np.zeros((B, T), bool)
    score[0, :] = True            # the stream's first window: no context
    score[1:, 7:] = True
    return H, W, Y, context_mask(torch.from_numpy(score)).numpy()


@pytest.mark.parametrize("shared", [False, True])
def test_adamw_fit_matches_float64_reference(shared):
    H, W, Y, M = batch_data()
    cfg = AdamWDeltaConfig(steps=6, lr=0.05)
    got = fit_hidden_delta(torch.from_numpy(H), torch.from_numpy(Y), torch.from_numpy(M),
                           SoftcapHead(torch.from_numpy(W), CAP), cfg, shared=shared)
    np.testing.assert_allclose(got[:, 0].numpy(), ref_adamw(H, Y, M, W, cfg, shared), rtol=1e-9, atol=1e-12)
    if not shared:
        assert torch.all(got[0] == 0)  # no context, no change


def test_adamw_is_separable_per_window():
    """Each window's delta is exactly the delta it gets when fitted alone."""
    H, W, Y, M = batch_data(seed=1)
    head = SoftcapHead(torch.from_numpy(W), CAP)
    cfg = AdamWDeltaConfig(steps=5, lr=0.03)
    both = fit_hidden_delta(torch.from_numpy(H), torch.from_numpy(Y), torch.from_numpy(M), head, cfg)
    for b in range(H.shape[0]):
        alone = fit_hidden_delta(torch.from_numpy(H[b:b + 1]), torch.from_numpy(Y[b:b + 1]),
                                 torch.from_numpy(M[b:b + 1]), head, cfg)
        np.testing.assert_allclose(both[b].numpy(), alone[0].numpy(), rtol=1e-12, atol=1e-15)


def test_lbfgs_reaches_the_optimality_condition():
    """At the optimum of mean CE(z + delta), mean softmax(z + delta) equals the empirical target
    frequencies; L-BFGS must shrink that gap by orders of magnitude (no clamp)."""
    g = np.random.default_rng(2)
    z = torch.from_numpy(g.normal(size=(40, 7)))
    y = torch.from_numpy(np.array([i % 7 for i in range(40)]))
    freq = torch.bincount(y, minlength=7).double() / 40

    def gap(d):
        return (torch.softmax(z + d, -1).mean(0) - freq).abs().max().item()

    d = fit_logit_delta(z, y, torch.zeros(7, dtype=torch.float64), LBFGSConfig(clamp=None))
    assert gap(d) < 1e-4 * gap(torch.zeros(7, dtype=torch.float64))
    # with an L2 penalty the optimum is mean softmax(z + d) - freq + l2 d = 0 (strictly convex: unique)
    d2 = fit_logit_delta(z, y, torch.zeros(7, dtype=torch.float64), LBFGSConfig(clamp=None, l2=0.3))
    assert (torch.softmax(z + d2, -1).mean(0) - freq + 0.3 * d2).abs().max() < 1e-6
    clamped = fit_logit_delta(z * 40, y, torch.zeros(7, dtype=torch.float64), LBFGSConfig(clamp=0.5))
    assert clamped.abs().max() <= 0.5


def synthetic_luts(vocab):
    g = np.random.default_rng(1)
    return ByteLuts(g.integers(1, 5, vocab).astype(np.int16), g.random(vocab) < 0.4, np.zeros(vocab, bool))


def tiny_gpt(vocab=48):
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=vocab, num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1, tied_embed_init_std=0.5))
    return m.double().eval()


def run(model, toks, cfg, vocab=48):
    """Scores per target and deltas per window index, one batch of 8 windows (seq 24, stride 6)."""
    sess = EvalSession(toks, synthetic_luts(vocab), 24, 6, batch_seqs=8)
    deltas = {}

    def record(batch, d):
        for j, w in enumerate(batch.window_index.tolist()):
            deltas[w] = d[0 if d.shape[0] == 1 else j].clone()

    causal_slot_evaluate(model, sess, cfg, record=record)
    assert (sess.coverage == 1).all()
    return sess, deltas


CASES = {
    "adamw": CausalSlotConfig(adamw=AdamWDeltaConfig(steps=4, lr=0.05)),
    "lbfgs": CausalSlotConfig(optimizer="lbfgs", lbfgs=LBFGSConfig(max_iter=6)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_changing_a_token_scored_by_window_i(name):
    """Per-window: window j < i keeps its delta and scores bit for bit; the shared mode does not."""
    model = tiny_gpt()
    toks = torch.from_numpy(np.random.default_rng(5).integers(0, 48, 24 + 6 * 7 + 1))
    base, base_d = run(model, toks, CASES[name])
    i = 3
    win = base.schedule.window(i)
    t = win.targets[0] + 2                         # a target scored by window i
    flipped = toks.clone()
    flipped[t + 1] = (flipped[t + 1] + 1) % 48     # target t is stream token t + 1
    new, new_d = run(model, flipped, CASES[name])
    for j in range(i):
        assert torch.equal(base_d[j], new_d[j]), f"window {j}'s delta moved"
        lo, hi = base.schedule.window(j).targets
        np.testing.assert_array_equal(base.nll[lo:hi], new.nll[lo:hi])
    assert not torch.equal(base_d[i + 1], new_d[i + 1])    # a later window's context did change

    shared = CausalSlotConfig(**{**CASES[name].__dict__, "shared": True})
    sb, sbd = run(model, toks, shared)
    sn, snd = run(model, flipped, shared)
    lo, hi = sb.schedule.window(1).targets
    assert not torch.equal(sbd[1], snd[1])
    assert np.abs(sb.nll[lo:hi] - sn.nll[lo:hi]).max() > 1e-9


def test_plugin_registration_and_legality():
    got = []
    plugin.golf_register(got.append)
    info = got[0]
    assert info.name == "causal-slot" and "#1306" in info.lineage
    o = plugin.CausalSlotOptions()
    assert info.track_for(o) == "score-first"
    assert info.track_for(plugin.CausalSlotOptions(share_delta=True)) == "not-causal"
    assert (o.steps, o.lr, o.beta1, o.beta2, o.eps, o.weight_decay) == (8, 0.005, 0.3, 0.9, 1e-5, 1e-8)
    c = plugin.config_of(plugin.CausalSlotOptions(optimizer="lbfgs", context_tokens=64))
    assert c.lbfgs.max_iter == 25 and c.lbfgs.history_size == 20 and c.lbfgs.clamp == 5.0 and c.context_tokens == 64
