"""T26/T27 variants of score-first-ttt: the TTT-only hash embedding and AdamW (#1529) against a
hand-written float64 reference, and the causal n-gram tilt (#1514) against its closed form."""
from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from golf_core.errors import GolfError
from golf_core.eval import EvalSession
from golf_score_first_ttt import NgramMixer, StreamTilt, TiltConfig, TTTConfig, score_first_ttt, tilt_rows
from golf_score_first_ttt import plugin

from sfttt_reference import SEQ, STRIDE, VOCAB, luts, records_steps, reference, stream, tilted_scores, tiny_gpt


class RefHash(nn.Module):
    """The reference's own hash table: row (previous token * 2039 + token) mod size, previous = 0 first."""

    def __init__(self, size, dim):
        super().__init__()
        self.size = size
        self.table = nn.Parameter(torch.zeros(size, dim, dtype=torch.float64))

    def forward(self, x, ids):
        rows = torch.tensor([[((int(r[j - 1]) if j else 0) * 2039 + int(r[j])) % self.size for j in range(len(r))]
                             for r in ids.tolist()])
        return x + self.table[rows]


def test_hash_embedding_matches_a_hand_written_reference_and_is_removed():
    model, toks = tiny_gpt(), stream()
    cfg = TTTConfig(chunk_tokens=32, lr=0.05, epochs=2, batch_seqs=2, grad_clip=0.5, hash_embed_size=37)
    ref_nll, ref_model = reference(model, toks, cfg, RefHash(37, model.tok_emb.weight.shape[1]))
    sess = EvalSession(toks, luts(), SEQ, STRIDE, batch_seqs=3)
    score_first_ttt(model, sess, cfg)
    np.testing.assert_allclose(sess.nll, ref_nll, rtol=1e-9, atol=1e-11)
    ref_params = dict(ref_model.named_parameters())
    for n, p in model.named_parameters():
        torch.testing.assert_close(p, ref_params[n], rtol=1e-9, atol=1e-11, msg=n)
    assert float(ref_model.embed_post_norm.table.detach().abs().sum()) > 0       # the table did train
    assert type(model.embed_post_norm).__name__ == "IdentityEmbed"      # and golf's is gone again


def test_adamw_is_torch_adamw_on_each_chunk():
    torch.manual_seed(0)
    model = tiny_gpt()
    ref = copy.deepcopy(model)
    toks = stream(n=120, seed=5)
    cfg = TTTConfig(chunk_tokens=48, lr=0.01, epochs=2, batch_seqs=2, grad_clip=1.0, optimizer="adamw", adamw_wd=0.1)
    score_first_ttt(model, EvalSession(toks, luts(), SEQ, STRIDE), cfg)
    records_steps(ref, toks, cfg, torch.optim.AdamW(list(ref.parameters()), lr=cfg.lr, weight_decay=0.1))
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14, msg=name)
    with pytest.raises(GolfError, match="optimizer"):
        score_first_ttt(tiny_gpt(), EvalSession(toks, luts(), SEQ, STRIDE), TTTConfig(chunk_tokens=48, optimizer="lion"))


# ---- n-gram tilt -------------------------------------------------------------------------------

def test_tilted_row_is_the_closed_form_distribution():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, VOCAB, generator=g, dtype=torch.float64) * 3
    hints = torch.tensor([3, -1, 7, 0, 47])
    betas = torch.tensor([2.0, 1.5, 0.4, 1.0, 0.0], dtype=torch.float64)
    got = torch.log_softmax(tilt_rows(z, hints, betas), -1)
    p = torch.softmax(z, -1)
    for i in range(5):
        if hints[i] < 0:
            torch.testing.assert_close(got[i], p[i].log())
            continue
        h, b = int(hints[i]), float(betas[i])
        Z = 1 + float(p[i, h]) * (math.exp(b) - 1)
        want = p[i].clone()
        want[h] *= math.exp(b)
        torch.testing.assert_close(got[i], (want / Z).log())


def test_hints_learn_a_repeated_phrase_and_depend_on_the_prefix_only():
    phrase = [5, 9, 11, 2, 30, 17, 8, 4, 21, 13, 6, 40]
    toks = np.array(phrase * 6)
    ls = np.zeros(VOCAB, bool)
    bd = np.zeros(VOCAB, bool)
    h, b = NgramMixer(ls, bd).hints(toks)
    # after two full repeats every order-8 context has been seen with count >= 3 (orders 8-10 need 3)
    n = len(phrase)
    late = np.arange(3 * n + 8, len(toks) - 1)
    assert (h[late] == toks[late + 1]).all() and np.allclose(b[late], 2.0)
    assert (h[:n + 8] == -1).all()                       # nothing repeats yet
    # changing token t changes no hint for the tokens up to t
    for t in (20, 40):
        y = toks.copy()
        y[t] = (y[t] + 1) % VOCAB
        h2, b2 = NgramMixer(ls, bd).hints(y)
        assert (h2[:t] == h[:t]).all() and (b2[:t] == b[:t]).all()


def test_within_and_word_experts_fire_and_agree():
    """Words of a small vocabulary: word starts carry a leading space; with the within/word
    experts on (betas 0.92 / 0.5) their hints appear and agreeing hints gain the bonus."""
    rng = np.random.default_rng(0)
    ls = np.zeros(VOCAB, bool)
    ls[:10] = True                                   # ids 0..9 start a word
    words = [[int(rng.integers(0, 10))] + list(rng.integers(10, VOCAB, size=int(rng.integers(1, 4)))) for _ in range(6)]
    toks = np.array([t for i in rng.integers(0, 6, 400) for t in words[i]])
    cfg = TiltConfig(within_beta=0.92, word_beta=0.5)
    h, b = NgramMixer(ls, np.zeros(VOCAB, bool), cfg).hints(toks)
    betas = set(np.round(b[h >= 0], 6).tolist())
    assert any(abs(x - 0.92) < 1e-9 or abs(x - 1.02) < 1e-9 for x in betas)   # within-word (+ agree bonus)
    off, _ = NgramMixer(ls, np.zeros(VOCAB, bool), TiltConfig()).hints(toks)
    assert (h >= 0).sum() >= (off >= 0).sum()


def test_session_scores_the_records_tilted_nll():
    """The session's NLL of a tilted row equals #1514's formula nll + [h](log Z - beta [y == h])."""
    model, toks = tiny_gpt(), torch.from_numpy(np.array(([5, 9, 11, 2, 30, 17, 8, 4, 21, 13] * 12)[:101]))
    base = EvalSession(toks, luts(), SEQ, STRIDE)
    score_first_ttt(model, base, TTTConfig(chunk_tokens=32, epochs=0))
    sess = EvalSession(toks, luts(), SEQ, STRIDE)
    lz = luts()
    tilt = StreamTilt(NgramMixer(lz.has_leading_space, lz.is_boundary))
    score_first_ttt(tiny_gpt(), sess, TTTConfig(chunk_tokens=32, epochs=0), tilt=tilt)
    h, beta = NgramMixer(lz.has_leading_space, lz.is_boundary).hints(toks[:-1].numpy())
    # p(h) from the untilted model, per target, from its own full rows
    with torch.no_grad():
        logp = torch.log_softmax(tiny_gpt().forward_logits(toks[None, :SEQ]), -1)
    y = toks[1:].numpy()
    has = h >= 0
    assert has.sum() > 20 and tilt.hinted == int(has.sum())
    # on the first window (targets < SEQ) the rows are the model's over the stream prefix
    for i in range(SEQ):
        want = base.nll[i]
        if has[i]:
            ph = float(logp[0, i, h[i]].exp())
            want = want + math.log(1 + ph * (math.exp(beta[i]) - 1)) - beta[i] * (y[i] == h[i])
        assert sess.nll[i] == pytest.approx(want, rel=1e-9, abs=1e-12)
    # everywhere: tilting lowers the NLL of hinted-and-right targets, raises hinted-and-wrong ones
    right = has & (h == y) & (beta > 0)
    assert right.sum() > 20 and (sess.nll[right] < base.nll[right]).all()
    assert (sess.nll[~has] == base.nll[~has]).all()


def test_tilt_without_the_session_refuses_a_gap_and_with_it_catches_up():
    """A share that starts after targets this tilt did not see: without the session it cannot
    read the prefix in between (error); with it, the hints are the one-rank run's."""
    lz, toks = luts(), torch.from_numpy(np.array(([5, 9, 11, 2, 30, 17, 8, 4, 21, 13] * 12)[:101]))
    sess = EvalSession(toks, lz, SEQ, STRIDE)
    late = sess.span_batch([40], [SEQ], [48], [56])
    with pytest.raises(GolfError, match="cannot read the prefix"):
        StreamTilt(NgramMixer(lz.has_leading_space, lz.is_boundary)).apply(late, torch.zeros(8, VOCAB))
    tilt = StreamTilt(NgramMixer(lz.has_leading_space, lz.is_boundary), sess)
    z = tilt.apply(late, torch.zeros(8, VOCAB, dtype=torch.float64))
    h, beta = NgramMixer(lz.has_leading_space, lz.is_boundary).hints(toks[:56].numpy())
    want = tilt_rows(torch.zeros(8, VOCAB, dtype=torch.float64), torch.from_numpy(h[48:]), torch.from_numpy(beta[48:]))
    assert (h[48:] >= 0).sum() > 3 and torch.equal(z, want) and tilt.next_target == 56
    assert sess.coverage[:56].sum() == 0      # catching up scores nothing
    with pytest.raises(GolfError, match="contiguous"):
        tilt.apply(sess.span_batch([0], [SEQ], [8], [16]), torch.zeros(8, VOCAB))
    assert plugin.tilt_of(plugin.ScoreFirstTTTOptions(), type("Ctx", (), {"luts": lz})) is None


_TWO_RANKS = """
import json, os, sys
import numpy as np, torch, torch.distributed as dist
sys.path.insert(0, os.environ["TEST_DIR"])
from sfttt_reference import tilted_scores
dist.init_process_group("gloo", init_method="file://" + os.environ["INIT_FILE"], rank=int(os.environ["RANK"]), world_size=2)
sess, tilt = tilted_scores()
res = sess.result()
mine = np.nonzero(sess.coverage)[0]
print(json.dumps({"targets": mine.tolist(), "nll": sess.nll[mine].tolist(), "hinted": tilt.hinted,
                  "val_bpb": res.val_bpb, "val_loss": res.val_loss}))
dist.barrier()  # no rank leaves while the other is in a collective (gloo: "terminate called")
dist.destroy_process_group()
"""


def test_tilt_on_two_ranks_gives_the_one_rank_hints_and_scores(tmp_path):
    """2 gloo processes, each scoring half of every chunk: per-target NLL (so hints and betas),
    the hinted count and the BPB equal the one-rank run's exactly."""
    script = tmp_path / "two_ranks.py"
    script.write_text(_TWO_RANKS)
    env = dict(os.environ, TEST_DIR=os.path.dirname(__file__), INIT_FILE=str(tmp_path / "init"),
               PYTHONPATH=os.pathsep.join([os.getcwd()] + sys.path), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, str(script)], env=dict(env, RANK=str(r)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs[0][1][-2000:] + outs[1][1][-2000:]
    got = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    one, tilt = tilted_scores()
    ref = one.result()
    t0, t1 = got[0]["targets"], got[1]["targets"]
    assert t0 and t1 and not set(t0) & set(t1) and sorted(t0 + t1) == list(range(400))
    assert max(t0[-1], t1[-1]) > 64 and t0[0] == 0 and t1[0] > 0    # rank 1 starts late in each chunk
    for g in got:
        assert np.array_equal(np.array(g["nll"]), one.nll[g["targets"]])
        assert g["val_bpb"] == pytest.approx(ref.val_bpb, rel=1e-12) and g["val_loss"] == pytest.approx(ref.val_loss, rel=1e-12)
    assert got[0]["hinted"] + got[1]["hinted"] == tilt.hinted > 50
