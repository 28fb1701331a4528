"""Shared by the tests of score-first-ttt: a tiny float64 GPT, a random stream, byte tables,
the brute-force float64 reference of chunked score-first TTT, and a tilted scoring run."""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F

from golf_core.data.tokenizer import ByteLuts
from golf_core.model import GPT, GPTConfig

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


def reference(model, toks, cfg, embed=None):
    """Brute force: chunk c = targets [cC, (c+1)C); score each window of the chunk alone; then
    SGD(momentum) by hand on the chunk's non-overlapping sequences. ``embed``: a module the copy
    takes as its ``embed_post_norm`` (trained with it)."""
    model = copy.deepcopy(model)
    if embed is not None:
        model.embed_post_norm = embed
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


def records_steps(ref, toks, cfg, opt):
    """#1413's update loop written out with a torch optimizer ``opt`` on ``ref``: per chunk but the
    last, cosine lr, epochs x micro-batches of mean-loss backward, ``clip_grad_norm_``, step."""
    N, C = toks.numel() - 1, cfg.chunk_tokens
    nC = math.ceil(N / C)
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


def tilted_scores(chunk_tokens: int = 64):
    """score-first-ttt without updates and with the n-gram tilt over a 401-token stream of
    repeats (the tilt hints often), on this process's rank; returns ``(session, tilt)``."""
    from golf_core.eval import EvalSession
    from golf_score_first_ttt import NgramMixer, StreamTilt, TTTConfig, score_first_ttt
    lz = luts()
    toks = torch.from_numpy(np.array(([5, 9, 11, 2, 30, 17, 8, 4, 21, 13, 7, 5, 9, 11, 3] * 30)[:401]))
    sess = EvalSession(toks, lz, SEQ, STRIDE)
    tilt = StreamTilt(NgramMixer(lz.has_leading_space, lz.is_boundary), sess)
    score_first_ttt(tiny_gpt(), sess, TTTConfig(chunk_tokens=chunk_tokens, epochs=0), tilt=tilt)
    return sess, tilt
