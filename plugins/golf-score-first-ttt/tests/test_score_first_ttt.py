"""score-first-ttt against a float64 brute-force reference (window-by-window scoring, hand-written
SGD with momentum and clipping), the flip test, the ledger certificate, options."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from golf_core.errors import GolfError
from golf_core.eval import EvalSession
from golf_core.model import GPT, GPTConfig
from golf_core.api import trainable_parameters
from golf_score_first_ttt import TTTConfig, certify_ledger, chunk_lr, score_first_ttt
from golf_score_first_ttt import plugin

from sfttt_reference import SEQ, STRIDE, VOCAB, luts, records_steps, reference, stream, tiny_gpt


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
    records_steps(ref, toks, cfg, torch.optim.SGD(list(ref.parameters()), lr=cfg.lr, momentum=cfg.momentum))
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        assert torch.equal(p, q), name
