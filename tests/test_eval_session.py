"""EvalSession + score_fixed against a brute-force per-position float64 loop; exact coverage;
the score/update ledger for eval-time adaptation."""
from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from golf_core.data.tokenizer import ByteLuts
from golf_core.errors import GolfError, LegalityError
from golf_core.eval import EvalSession, WindowSchedule, score_fixed

VOCAB = 97


class TinyCausalLM(nn.Module):
    """A causal stand-in: position t sees the running mean of the window's embeddings up to t,
    so a position's NLL depends on where its window starts (sliding != non-overlapping)."""

    def __init__(self, vocab=VOCAB, dim=16, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.emb = nn.Parameter(torch.randn(vocab, dim, generator=g))
        self.mix = nn.Parameter(torch.randn(dim, dim, generator=g) * 0.5)
        self.out = nn.Parameter(torch.randn(dim, vocab, generator=g))

    def forward_logits(self, x):
        e = self.emb[x]
        t = torch.arange(1, x.shape[1] + 1, dtype=e.dtype).view(1, -1, 1)
        h = torch.tanh(e + (e.cumsum(1) / t) @ self.mix)
        return h @ self.out


def synthetic_luts(vocab=VOCAB, seed=1) -> ByteLuts:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 6, vocab).astype(np.int16)
    space = rng.random(vocab) < 0.4
    boundary = np.zeros(vocab, dtype=bool)
    boundary[:4] = True
    base[:4] = 0
    space[:4] = False
    return ByteLuts(base, space, boundary)


def stream(n_tokens, seed=2):
    rng = np.random.default_rng(seed)
    t = rng.integers(4, VOCAB, n_tokens)
    t[rng.random(n_tokens) < 0.02] = 1  # some BOS boundaries
    return torch.from_numpy(t)


def brute_force(model, tokens, luts, seq_len, stride):
    """Per-position float64 loop: for each target i find the window that scores it (written from the
    definition, not from WindowSchedule), run that window alone, take log-softmax at i - ws."""
    model = model.double()
    tok = tokens.tolist()
    n = len(tok) - 1
    stride = stride or seq_len
    ctx = seq_len - stride
    nll = []
    nbytes = 0
    cache = {}
    for i in range(n):
        ws = 0 if i < seq_len else ((i - ctx) // stride) * stride
        if ws not in cache:
            x = torch.tensor(tok[ws: min(ws + seq_len, n)]).view(1, -1)
            with torch.no_grad():
                cache[ws] = model.forward_logits(x)[0].double()
        row = cache[ws][i - ws]
        nll.append(float(torch.logsumexp(row, 0) - row[tok[i + 1]]))
        t, p = tok[i + 1], tok[i]
        nbytes += int(luts.base_bytes[t]) + (1 if luts.has_leading_space[t] and not luts.is_boundary[p] else 0)
    loss = math.fsum(nll) / n
    return np.array(nll), loss, loss / math.log(2) * n / nbytes, nbytes


@pytest.fixture(scope="module")
def model():
    return TinyCausalLM().double()


@pytest.mark.parametrize("n_tokens,seq_len,stride,batch", [
    (1 + 8 * 128, 128, None, 3),     # non-overlapping, as load_validation_tokens truncates
    (1 + 8 * 128, 128, 64, 5),       # sliding
    (1 + 1000, 128, 64, 32),         # sliding with a partial tail window
    (1 + 777, 96, 40, 2),            # odd stride, tail
    (1 + 1000, 128, None, 4),        # non-overlapping with a partial last window
])
def test_matches_brute_force(model, n_tokens, seq_len, stride, batch):
    tokens, luts = stream(n_tokens), synthetic_luts()
    session = EvalSession(tokens, luts, seq_len, stride, batch_seqs=batch)
    res = score_fixed(model, session)
    nll, loss, bpb, nbytes = brute_force(model, tokens, luts, seq_len, stride)
    assert res.coverage_ok and (session.coverage == 1).all()
    assert res.tokens == n_tokens - 1 and res.bytes == nbytes
    np.testing.assert_allclose(session.nll, nll, rtol=0, atol=1e-10)
    assert abs(res.val_loss - loss) < 1e-9 and abs(res.val_bpb - bpb) < 1e-9


def test_stride_equal_to_seq_len_is_non_overlapping(model):
    tokens, luts = stream(1 + 16 * 64, seed=5), synthetic_luts()
    a = score_fixed(model, EvalSession(tokens, luts, 64, None, batch_seqs=4))
    b = score_fixed(model, EvalSession(tokens, luts, 64, 64, batch_seqs=7))
    assert abs(a.val_loss - b.val_loss) < 1e-9 and abs(a.val_bpb - b.val_bpb) < 1e-9
    c = score_fixed(model, EvalSession(tokens, luts, 64, 16, batch_seqs=4))
    assert abs(c.val_loss - a.val_loss) > 1e-6  # more context does change the score


def test_stride_64_covers_every_target_once_incl_tail(model):
    tokens, luts = stream(1 + 3000 + 37, seed=6), synthetic_luts()  # N not a multiple of 64
    session = EvalSession(tokens, luts, 256, 64, batch_seqs=8)
    res = score_fixed(model, session)
    assert res.coverage_ok and session.coverage.tolist() == [1] * 3037
    assert not np.isnan(session.nll).any()


def test_float32_model_close_to_float64(model):
    tokens, luts = stream(1 + 4 * 128, seed=7), synthetic_luts()
    m32 = TinyCausalLM().float()
    r32 = score_fixed(m32, EvalSession(tokens, luts, 128, 64))
    _, loss, _, _ = brute_force(TinyCausalLM(), tokens, luts, 128, 64)
    assert abs(r32.val_loss - loss) < 1e-5


def test_simulated_ranks_partition_the_targets(model):
    tokens, luts = stream(1 + 2000, seed=8), synthetic_luts()
    full = score_fixed(model, EvalSession(tokens, luts, 128, 32))
    cov = np.zeros(2000, dtype=int)
    loss = nbytes = count = 0.0
    for r in range(3):
        s = EvalSession(tokens, luts, 128, 32, rank=r, world_size=3)
        score_fixed(model, s)
        cov += s.coverage
        loss += s.loss_sum
        nbytes += s.byte_count
        count += s.token_count
    assert (cov == 1).all()
    assert abs(loss - full.loss_sum) < 1e-9 and nbytes == full.bytes and count == full.tokens


def test_double_scoring_and_bad_shapes(model):
    tokens, luts = stream(1 + 512, seed=9), synthetic_luts()
    s = EvalSession(tokens, luts, 128, 64, batch_seqs=2)
    V = luts.size
    batch = next(s.windows())
    s.score(batch, torch.zeros(batch.score_mask.shape + (V,), dtype=torch.float64))
    # uniform rows: the session computes NLL = log V itself
    assert np.allclose(s.nll[batch.scored_targets], np.log(V))
    with pytest.raises(LegalityError, match="scored twice"):
        s.score(batch, torch.zeros(batch.score_mask.shape + (V,)))
    batch2 = next(iter(list(s.windows())[1:]))
    with pytest.raises(GolfError, match="full logit rows"):
        s.score(batch2, torch.zeros(batch2.score_mask.shape))     # per-position NLL: refused
    with pytest.raises(LegalityError, match="columns"):
        s.score(batch2, torch.zeros(batch2.num_scored, V - 1))  # fewer columns than the vocabulary
    s.score(batch2, torch.ones(batch2.num_scored, V))  # [n_scored, V], score_mask order
    assert s.token_count == batch.num_scored + batch2.num_scored
    assert not s.result().coverage_ok
    assert {k for k, _ in s.violations} == {"scored_twice", "short_rows"}


def test_targets_only_after_scoring(model):
    """batch.y before the batch is scored is a recorded violation; context_y is the window's own
    inputs shifted; after scoring, y is free."""
    tokens, luts = stream(1 + 512, seed=19), synthetic_luts()
    s = EvalSession(tokens, luts, 128, 64, batch_seqs=2)
    b = next(s.windows())
    ctx_y = b.context_y
    mask = b.score_mask
    assert (ctx_y[mask] == 0).all()
    # the context targets are the next inputs of the same window
    assert torch.equal(ctx_y[1, :63], b.x[1, 1:64]) and s.violations == []
    s.score(b, model.forward_logits(b.x).detach())
    _ = b.y
    assert s.violations == []
    b2 = next(iter(list(s.windows())[1:]))
    _ = b2.y
    assert [k for k, _ in s.violations] == ["read_unscored_targets"]
    # a row that is not log-normalized is normalized by the session: NLL = -log softmax
    z = torch.randn(b2.num_scored, luts.size, dtype=torch.float64) * 3 + 7
    s.score(b2, z)
    ref = torch.logsumexp(z, 1) - z.gather(1, b2.y[b2.score_mask].view(-1, 1)).squeeze(1)
    assert np.allclose(s.nll[b2.scored_targets], ref.numpy(), atol=1e-12)


def test_batch_layout():
    tokens, luts = stream(1 + 300, seed=10), synthetic_luts()
    s = EvalSession(tokens, luts, 128, 64, batch_seqs=8)
    (b,) = list(s.windows())
    assert b.x.shape == (4, 128) and b.window_starts.tolist() == [0, 64, 128, 192]
    tail = b.window_starts[-1].item()
    wl = 300 - tail
    assert b.x[-1, :wl].tolist() == tokens[tail: tail + wl].tolist() and (b.x[-1, wl:] == 0).all()
    assert b.y[-1, :wl].tolist() == tokens[tail + 1: tail + wl + 1].tolist()
    assert b.target_pos[-1, :wl].tolist() == list(range(tail, 300)) and (b.target_pos[-1, wl:] == -1).all()
    assert b.score_mask[0].all() and b.score_mask[1, :64].logical_not().all() and b.score_mask[1, 64:].all()
    assert b.score_mask[-1, 64:wl].all() and not b.score_mask[-1, wl:].any()


def test_chunks_and_score_first_updates(model, tmp_path):
    """A TTT-like adapter: score each chunk, then take its tokens; updating early is refused."""
    tokens, luts = stream(1 + 4096 + 100, seed=11), synthetic_luts()
    s = EvalSession(tokens, luts, 256, 64, batch_seqs=4)
    chunks = s.chunks(1024)
    assert [c.index for c in chunks] == list(range(5)) and chunks[-1].is_last
    assert not any(c.is_last for c in chunks[:-1])
    # chunks tile the targets; with C a multiple of the stride they are #1413's nominal ranges
    assert chunks[0].target_lo == 0 and chunks[-1].target_hi == 4196
    assert all(a.target_hi == b.target_lo for a, b in zip(chunks, chunks[1:]))
    assert [(c.target_lo, c.target_hi) for c in chunks] == [(c.token_start, c.token_end) for c in chunks]
    with pytest.raises(LegalityError, match="not been scored"):
        s.update_tokens(chunks[0])
    got = []
    for c in chunks:
        for batch in c.windows():
            with torch.no_grad():
                logits = model.forward_logits(batch.x)
            s.score(batch, logits)
        if not c.is_last:
            toks = s.update_tokens(c)
            assert toks.tolist() == tokens[c.target_lo: c.target_hi + 1].tolist()
            got.append(toks)
            with pytest.raises(LegalityError):
                s.update_tokens((c.target_lo, c.target_hi + 1))  # the next chunk is not scored yet
    assert s.result().coverage_ok
    assert s.state_version == 4
    # ledger: every update's targets were scored before it, at an earlier or equal state version
    scored_at = {}
    for e in s.ledger:
        if e["event"] == "score":
            for t in range(*e["targets"]):
                scored_at.setdefault(t, e["state_version"])
        else:
            assert all(scored_at.get(t, 10**9) <= e["state_version"] for t in range(*e["targets"]))
    updates = [e for e in s.ledger if e["event"] == "update"]
    assert [u["state_version"] for u in updates] == [0, 1, 2, 3]
    scores = [e["state_version"] for e in s.ledger if e["event"] == "score"]
    assert scores == sorted(scores)
    path = tmp_path / "ledger.jsonl"
    s.write_ledger(path)
    import json
    assert [json.loads(line) for line in path.read_text().splitlines()] == s.ledger
    # the same numbers as a fixed-model scorer (the model never changed)
    ref = score_fixed(model, EvalSession(tokens, luts, 256, 64))
    assert abs(s.result().val_loss - ref.val_loss) < 1e-9


def test_unaligned_chunks_still_tile():
    tokens, luts = stream(1 + 3000, seed=12), synthetic_luts()
    s = EvalSession(tokens, luts, 128, 48)
    chunks = s.chunks(1000)
    assert chunks[0].target_lo == 0 and chunks[-1].target_hi == 3000
    assert all(a.target_hi == b.target_lo for a, b in zip(chunks, chunks[1:]))
    for r in range(2):
        s2 = EvalSession(tokens, luts, 128, 48, rank=r, world_size=2)
        idx = [int(i) for c in s2.chunks(1000) for b in c.windows(3) for i in b.window_index]
        assert idx == sorted(idx)


def test_score_fixed_uses_ctx_autocast_and_restores_mode(model):
    entered = []

    class Ctx:
        @contextlib.contextmanager
        def autocast(self):
            entered.append(True)
            yield

    tokens, luts = stream(1 + 256, seed=13), synthetic_luts()
    model.train()
    score_fixed(model, EvalSession(tokens, luts, 128), Ctx())
    assert entered == [True] and model.training


def test_schedule_argument_and_bad_input(model):
    tokens, luts = stream(1 + 256, seed=14), synthetic_luts()
    sched = WindowSchedule(256, 128, 32)
    s = EvalSession(tokens, luts, sched, batch_seqs=2)
    assert s.schedule is sched and s.stride == 32
    with pytest.raises(GolfError, match="does not fit"):
        EvalSession(tokens[:100], luts, sched)
    with pytest.raises(GolfError, match="outside the byte tables"):
        EvalSession(torch.tensor([1, 200, 3]), luts, 2)


def test_gpt_hidden_path_matches_brute_force():
    """With golf_core.model.GPT, score_fixed scores only the masked positions via
    forward_hidden + compute_logits; it must equal the per-position float64 loop."""
    from golf_core import model as gpt_mod
    from golf_core.config import ModelSection

    torch.manual_seed(0)
    sec = ModelSection(num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1, mlp_mult=2.0)
    gpt = gpt_mod.GPT(gpt_mod.GPTConfig.from_section(sec, VOCAB)).double()
    with torch.no_grad():
        for p in gpt.parameters():  # zero-initialised projections would make every position alike
            p.add_(torch.randn_like(p) * 0.05)
    gpt.eval()
    tokens, luts = stream(1 + 700, seed=15), synthetic_luts()
    session = EvalSession(tokens, luts, 128, 64, batch_seqs=3)
    res = score_fixed(gpt, session)
    nll, loss, bpb, _ = brute_force(gpt, tokens, luts, 128, 64)
    np.testing.assert_allclose(session.nll, nll, rtol=0, atol=1e-9)
    assert abs(res.val_bpb - bpb) < 1e-9 and res.coverage_ok


_DIST_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np, torch, torch.distributed as dist
    sys.path.insert(0, os.environ["TEST_DIR"])
    from test_eval_session import TinyCausalLM, stream, synthetic_luts
    from golf_core.eval import EvalSession, score_fixed
    dist.init_process_group("gloo", init_method="file://" + os.environ["INIT_FILE"],
                            rank=int(os.environ["RANK"]), world_size=2)
    tokens, luts = stream(1 + 1500, seed=16), synthetic_luts()
    model = TinyCausalLM().double()
    s = EvalSession(tokens, luts, 128, 64, batch_seqs=4)
    assert s.world_size == 2
    res = score_fixed(model, s)
    chunks = s.chunks(512)
    s2 = EvalSession(tokens, luts, 128, 64)
    c = s2.chunks(512)[0]
    for b in c.windows():
        s2.score(b, torch.zeros(b.score_mask.shape + (luts.size,)))
    toks = s2.update_tokens(c)   # needs the other rank's half of the chunk: all-reduced coverage
    if dist.get_rank() == 0:
        print(json.dumps([res.val_loss, res.val_bpb, res.tokens, res.bytes, res.coverage_ok, len(toks)]))
    dist.barrier()  # no rank leaves while the other is in a collective (gloo: "terminate called")
    dist.destroy_process_group()
""")


def test_torch_distributed_gloo_all_reduce(tmp_path, model):
    script = tmp_path / "dist_eval.py"
    script.write_text(_DIST_SCRIPT)
    env = dict(os.environ, TEST_DIR=os.path.dirname(__file__), INIT_FILE=str(tmp_path / "init"),
               PYTHONPATH=os.pathsep.join([os.getcwd()] + sys.path))
    procs = [subprocess.Popen([sys.executable, str(script)], env=dict(env, RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs[0][1][-2000:] + outs[1][1][-2000:]
    import json

    loss, bpb, n, nbytes, ok, ntok = json.loads(outs[0][0].strip().splitlines()[-1])
    tokens, luts = stream(1 + 1500, seed=16), synthetic_luts()
    ref = score_fixed(model, EvalSession(tokens, luts, 128, 64))
    assert ok and n == ref.tokens == 1500 and nbytes == ref.bytes
    assert abs(loss - ref.val_loss) < 1e-9 and abs(bpb - ref.val_bpb) < 1e-9
    assert ntok == 513


def test_fp32_nll_is_the_records_cross_entropy_bitwise():
    """In float32 the session's per-target NLL is, bit for bit, what the records' sliding scorer
    computes (#1394 ``eval_val_sliding``: ``F.cross_entropy`` over every row of the [B*T, V] batch,
    scored rows taken afterwards), and within float32 rounding of the float64 brute force.
    (``logsumexp(z) - z[y]`` differed from it by up to 2 ulps.)"""
    fmodel = TinyCausalLM(seed=3).float()
    with torch.no_grad():
        fmodel.out.mul_(4.0)  # NLLs of a few nats, where float32 ulps show
    tokens, luts = stream(1 + 640, seed=4), synthetic_luts()
    session = EvalSession(tokens, luts, 64, 32, batch_seqs=7)
    score_fixed(fmodel, session)
    ref = np.full(640, np.nan)
    with torch.no_grad():
        for b in EvalSession(tokens, luts, 64, 32, batch_seqs=7).windows():
            z = fmodel.forward_logits(b.x)
            y = b.y
            nll = torch.nn.functional.cross_entropy(z.reshape(-1, z.size(-1)), y.reshape(-1),
                                                    reduction="none").reshape(y.shape)
            ref[b.scored_targets] = nll[b.score_mask].double().numpy()
    assert np.array_equal(session.nll, ref)
    import copy
    nll64, *_ = brute_force(copy.deepcopy(fmodel).double(), tokens, luts, 64, 32)
    assert np.abs(session.nll - nll64).max() < 1e-4
