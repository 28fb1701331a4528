"""lora-ttt against a float64 reference that scores each document alone (its own adapters drawn
in #1530's order, its own window per chunk, AdamW written out), the ledger in the declared
order, phases (boundaries, prefix, scores before every phase untouched), and what check flags."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from golf_core.check.ledger import audit_ledger
from golf_core.data.tokenizer import ByteLuts
from golf_core.errors import LegalityError
from golf_core.eval import EvalSession, find_documents, length_order
from golf_core.model import GPT, GPTConfig
from golf_lora_ttt import (GlobalSGDConfig, LoRATTTConfig, global_sgd, lora_ttt, phase_boundaries, prefix_documents,
                           segment_loss)

V, BOS = 40, 1


def luts():
    g = np.random.default_rng(1)
    return ByteLuts(g.integers(1, 5, V).astype(np.int16), g.random(V) < 0.4, np.isin(np.arange(V), [0, 1, 2, 3]))


def stream(lengths=(23, 7, 41, 15, 30, 12), seed=0):
    g = np.random.default_rng(seed)
    toks = []
    for n in lengths:
        toks += [BOS] + g.integers(4, V, n).tolist()
    return torch.tensor(toks)


def tiny_gpt():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=V, num_layers=2, model_dim=16, num_heads=2, num_kv_heads=1, tied_embed_init_std=0.3))
    m = m.double()
    with torch.no_grad():
        for p in m.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.1)
    return m.eval()


def _draws(bsz, shapes, rank, gen):
    """A of every adapter for ``bsz`` rows in #1530's order (head, q.., v.., k.., mlp.., o..)."""
    out = {}
    for key, (din, _) in shapes:
        b = 1.0 / math.sqrt(din)
        out[key] = torch.empty(bsz, rank, din, dtype=torch.float32).uniform_(-b, b, generator=gen).double()
    return out


def reference(model, toks, cfg):
    """Per-document float64 TTT, documents alone, with the A draws of the batched run."""
    N = toks.numel() - 1
    docs = find_documents(toks.numpy(), BOS)
    groups = length_order(docs, cfg.batch_docs)
    d, kv, r = 16, 8, cfg.rank
    shapes = [("head", (d, V))] + [((t, s), (d, {"q": d, "v": kv, "k": kv, "mlp": d, "o": d}[t]))
                                   for t in ("q", "v", "k", "mlp", "o") for s in range(2)]
    gen = torch.Generator().manual_seed(cfg.seed)
    draws = _draws(cfg.batch_docs, shapes, r, gen)     # the bank made at the start
    nll = np.full(N, np.nan)
    for gi, g in enumerate(groups):
        draws = _draws(len(g), shapes, r, gen)         # reset (same size) or a new bank: one draw each
        for row, doc in enumerate(g):
            A = {k: v[row].clone().requires_grad_(True) for k, v in draws.items()}
            B = {k: torch.zeros(dout, r, dtype=torch.float64, requires_grad=True) for k, (_, dout) in shapes}
            params = [(("A", k), A[k]) for k in A] + [(("B", k), B[k]) for k in B]
            state = {name: (torch.zeros_like(p), torch.zeros_like(p)) for name, p in params}
            dt = toks[doc.target_lo: doc.target_hi + 1]
            P = doc.num_targets
            nc = -(-P // cfg.chunk_size)
            for ci in range(nc):
                end = P if ci == nc - 1 else (ci + 1) * cfg.chunk_size
                ws = max(0, end - cfg.seq_len)
                x, y = dt[ws:end][None], dt[ws + 1:end + 1]
                logits = _ref_forward(model, x, A, B)[0]
                ce = F.cross_entropy(logits, y, reduction="none")
                lo = ci * cfg.chunk_size - ws
                nll[doc.target_lo + ci * cfg.chunk_size: doc.target_lo + end] = ce[lo:].detach().numpy()
                if ci == nc - 1:
                    continue
                loss = ce[lo:lo + cfg.chunk_size].mean()
                grads = torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
                with torch.no_grad():
                    for (name, p), gr in zip(params, grads):
                        gr = torch.zeros_like(p) if gr is None else gr
                        m_, v_ = state[name]
                        p.mul_(1 - cfg.lr * cfg.weight_decay)
                        m_.mul_(cfg.beta1).add_((1 - cfg.beta1) * gr)
                        v_.mul_(cfg.beta2).add_((1 - cfg.beta2) * gr * gr)
                        t = ci + 1
                        denom = (v_.sqrt() / math.sqrt(1 - cfg.beta2 ** t)) + cfg.eps
                        p.sub_(cfg.lr / (1 - cfg.beta1 ** t) * m_ / denom)
    return nll


def _ref_forward(model, x, A, B):
    """The model with its q/k/v weights merged per slot, o/mlp bypass modules and the head added."""
    ref = copy.deepcopy(model)
    for p in ref.parameters():
        p.requires_grad_(False)

    class Lin(torch.nn.Module):
        def __init__(self, inner, k):
            super().__init__()
            self.inner, self.k = inner, k

        def forward(self, h):
            return self.inner(h) + (h @ A[self.k].T) @ B[self.k].T

    for i, blk in enumerate(ref.blocks):
        blk.attn.c_q, blk.attn.c_k, blk.attn.c_v = Lin(blk.attn.c_q, ("q", i)), Lin(blk.attn.c_k, ("k", i)), Lin(blk.attn.c_v, ("v", i))
        blk.attn, blk.mlp = Lin(blk.attn, ("o", i)), Lin(blk.mlp, ("mlp", i))
    h = ref.forward_hidden(x)
    z = F.linear(h, ref.tok_emb.weight) + (h @ A["head"].T) @ B["head"].T
    cap = ref.config.logit_softcap
    return cap * torch.tanh(z / cap)


CFG = LoRATTTConfig(rank=3, chunk_size=8, seq_len=20, batch_docs=4, lr=0.02, weight_decay=0.5)


def test_matches_per_document_reference():
    toks = stream()
    sess = EvalSession(toks, luts(), 32, 32)
    lora_ttt(tiny_gpt(), sess, CFG)
    assert (sess.coverage == 1).all()
    np.testing.assert_allclose(sess.nll, reference(tiny_gpt(), toks, CFG), rtol=1e-9, atol=1e-11)


def test_ledger_declares_the_order_and_passes_the_audit():
    sess = EvalSession(stream(), luts(), 32, 32)
    lora_ttt(tiny_gpt(), sess, CFG)
    assert sess.ledger[0]["event"] == "order"
    a = audit_ledger(sess.ledger)
    assert a.ok, a.problems
    assert a.updates > 0 and a.scores > 0


def test_audit_flags_an_update_before_its_score_and_an_earlier_group_after_a_later_update():
    sess = EvalSession(stream(), luts(), 32, 32)
    lora_ttt(tiny_gpt(), sess, CFG)
    ev = sess.ledger
    order, first_update = ev[0], next(i for i, e in enumerate(ev) if e["event"] == "update")
    # 1) the update moved before the score of its own targets
    upd = ev[first_update]
    score_i = max(i for i, e in enumerate(ev[:first_update]) if e["event"] == "score"
                  and any(a <= upd["targets"][0] and upd["targets"][1] <= b for a, b in e.get("spans", [e["targets"]])))
    swapped = ev[:score_i] + [upd] + ev[score_i:first_update] + ev[first_update + 1:]
    a = audit_ledger(swapped)
    assert not a.ok and "not all scored before it" in a.problems[0]
    # 2) a later group's update, then a score back in the first group
    g0, g1 = order["groups"][0][0], order["groups"][1][0]
    bad = [order, {"event": "score", "state_version": 0, "targets": g1},
           {"event": "update", "state_version": 0, "targets": g1},
           {"event": "score", "state_version": 1, "targets": g0}]
    a = audit_ledger(bad)
    assert not a.ok and "later in the declared order" in a.problems[0]
    # 3) the session itself refuses tokens of a target not scored yet
    s2 = EvalSession(stream(), luts(), 32, 32)
    with pytest.raises(LegalityError, match="not been scored"):
        s2.update_tokens((0, 8), local=True)


def test_phase_boundaries_and_prefix_as_1626():
    assert phase_boundaries(2000, 3) == [666, 1333, 2000] and phase_boundaries(2500, 3) == [833, 1666, 2500]
    scored = [(9, 1, "a"), (9, 0, "b"), (4, 2, "c"), (7, 0, "d")]
    assert prefix_documents(scored, 3) == ["c", "d", "b"]


def test_global_sgd_loss_cuts_attention_at_bos_and_every_max_len_tokens():
    x = torch.tensor([5, 6, BOS, 7, 8, 9, 10, 11, BOS, 12])
    m = tiny_gpt()
    y = torch.randint(4, V, (10,))
    with torch.no_grad():
        got = segment_loss(m, x, y, BOS, 3)
        assert getattr(m, "document_mask", None) is None
        want = sum(F.cross_entropy(m.forward_logits(x[a:b][None])[0], y[a:b], reduction="sum")
                   for a, b in [(0, 2), (2, 5), (5, 8), (8, 10)]) / 10
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_phases_leave_every_earlier_score_alone_and_train_on_scored_documents_only():
    toks = stream(lengths=(23, 7, 41, 15, 30, 12, 9, 33, 18, 26))
    cfg = LoRATTTConfig(rank=3, chunk_size=8, seq_len=20, batch_docs=2, lr=0.02, prefix_docs=4, num_phases=2,
                        global_sgd=GlobalSGDConfig(lr=0.05, chunk_tokens=40, seq_len=20, batch_seqs=2))
    base, sess = EvalSession(toks, luts(), 32, 32), EvalSession(toks, luts(), 32, 32)
    lora_ttt(tiny_gpt(), base, LoRATTTConfig(**{**cfg.__dict__, "prefix_docs": 0}))
    stats = lora_ttt(tiny_gpt(), sess, cfg)
    assert [p["trained_docs"] for p in stats.phases] == [2, 4] and all(p["steps"] > 0 for p in stats.phases)
    a = audit_ledger(sess.ledger)
    assert a.ok, a.problems
    groups = sess.ledger[0]["groups"]
    before = [t for g in groups[:1] for lo, hi in g for t in range(lo, hi)]     # scored before phase 1
    after = [t for g in groups[2:] for lo, hi in g for t in range(lo, hi)]      # scored after it
    np.testing.assert_array_equal(sess.nll[before], base.nll[before])
    assert np.abs(sess.nll[after] - base.nll[after]).max() > 1e-6


@pytest.mark.parametrize("clip_order", ["per-matrix", "banks", "banks-first"])
def test_global_sgd_clips_every_parameter_once_in_any_clip_order(clip_order):
    """One clipped SGD step (float64, momentum 0 at the first step) against a brute-force
    reference: g * max_norm / (||all gradients|| + 1e-6), every parameter counted once, whether
    the norm is summed per matrix or over the banked record's banks (#1530's ``parameters()``)."""
    toks = stream(lengths=(30, 9))[:40]
    model, ref = tiny_gpt(), tiny_gpt()
    cfg = GlobalSGDConfig(lr=0.1, momentum=0.9, chunk_tokens=20, seq_len=20, batch_seqs=1, grad_clip=1e-3,
                          clip_order=clip_order)
    global_sgd(model, [toks], cfg, bos_id=BOS)     # chunks [0,20) and [20,39): one step, on the first
    loss = segment_loss(ref, toks[:20], toks[1:21], BOS, 20)
    grads = torch.autograd.grad(loss, list(ref.parameters()), allow_unused=True)
    grads = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, ref.parameters())]
    total = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
    assert total > 1e-3                                  # the clip is active
    with torch.no_grad():
        for (n, p), q, g in zip(model.named_parameters(), ref.parameters(), grads):
            want = q - 0.1 * g * (1e-3 / (total + 1e-6))
            torch.testing.assert_close(p, want, rtol=0, atol=1e-15, msg=n)


def test_the_global_sgd_clips_in_the_trainings_order():
    from golf_lora_ttt.plugin import LoRATTTOptions, config_of
    assert config_of(LoRATTTOptions(), 64, 1, "banks-first").global_sgd.clip_order == "banks-first"
    assert config_of(LoRATTTOptions(), 64).global_sgd.clip_order == "per-matrix"
