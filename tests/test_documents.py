"""Documents (PR #1530): segment boundaries from BOS, document-masked attention and a whole GPT
with the mask, each against an independent reference (brute force, a per-document loop in float64)."""
import math
import random

import numpy as np
import pytest
import torch

from golf_core.model.documents import (DocumentMask, bos_positions, cu_seqlens_for, max_segment_len,
                                      segment_ids, segment_starts)
from golf_core.model import GPT, GPTConfig
from golf_core.model.attention import document_attention

BOS = 1


def brute_segments(row, bos, max_len):
    """Segment index of every position, walking the row one token at a time."""
    seg, out, start = -1, [], 0
    for t, tok in enumerate(row):
        if t == 0 or tok == bos or (max_len and t - start >= max_len):
            seg += 1
            start = t
        out.append(seg)
    return out


def random_row(rng, T, p_bos=0.08, vocab=20):
    return [BOS if rng.random() < p_bos else rng.randrange(2, vocab) for _ in range(T)]


@pytest.mark.parametrize("max_len", [0, 1, 3, 7, 64])
def test_segments_equal_a_token_by_token_walk(max_len):
    rng = random.Random(max_len)
    for trial in range(40):
        B, T = rng.randint(1, 3), rng.randint(1, 40)
        rows = [random_row(rng, T, p_bos=rng.choice([0.0, 0.1, 0.5])) for _ in range(B)]
        cu = cu_seqlens_for(torch.tensor(rows), BOS, max_len)
        assert cu.dtype == torch.int32 and cu.numel() % 64 == 0 and int(cu[-1]) == B * T
        seg = segment_ids(cu, B, T)
        offset = 0
        for b, row in enumerate(rows):
            ref = brute_segments(row, BOS, max_len)
            got = (seg[b] - seg[b, 0]).tolist()
            assert got == ref, (row, max_len)
            if b:
                assert int(seg[b, 0]) == offset  # a row never continues the previous row's segment
            offset = int(seg[b, -1]) + 1
        lengths = [sum(1 for s in brute_segments(r, BOS, max_len) if s == k) for r in rows for k in set(brute_segments(r, BOS, max_len))]
        assert max_segment_len(cu) == max(lengths)


def test_segment_starts_cuts_from_each_document_start():
    # documents at 0, 5, 20 in a row of 27; cut every 4 from each document's start
    assert segment_starts([0, 5, 20], 27, 4) == [0, 4, 5, 9, 13, 17, 20, 24]
    assert segment_starts([3], 10, 0) == [0, 3]  # position 0 starts a segment mid-document
    assert bos_positions(np.array([1, 2, 1, 1, 5]), 1).tolist() == [0, 2, 3]


def reference_attention(q, k, v, row_segments):
    """Each segment attended on its own with an explicit causal softmax (float64)."""
    B, T, H, D = q.shape
    group = H // k.size(2)
    out = torch.zeros_like(q)
    for b in range(B):
        for s in sorted(set(row_segments[b])):
            idx = [t for t in range(T) if row_segments[b][t] == s]
            for h in range(H):
                qs, ks, vs = q[b, idx, h], k[b, idx, h // group], v[b, idx, h // group]
                scores = qs @ ks.T / math.sqrt(D)
                n = len(idx)
                scores = scores.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), float("-inf"))
                out[b, idx, h] = torch.softmax(scores, -1) @ vs
    return out


@pytest.mark.parametrize("heads", [(4, 2), (2, 2)])
def test_document_attention_equals_each_document_alone(heads):
    H, Hkv = heads
    g = torch.Generator().manual_seed(0)
    rng = random.Random(1)
    B, T, D = 3, 23, 8
    rows = [random_row(rng, T, 0.15) for _ in range(B)]
    q = torch.randn(B, T, H, D, generator=g, dtype=torch.float64)
    k = torch.randn(B, T, Hkv, D, generator=g, dtype=torch.float64)
    v = torch.randn(B, T, Hkv, D, generator=g, dtype=torch.float64)
    cu = cu_seqlens_for(torch.tensor(rows), BOS, 5)
    got = document_attention(q, k, v, cu, 5, "sdpa")
    ref = reference_attention(q, k, v, [brute_segments(r, BOS, 5) for r in rows])
    assert (got - ref).abs().max().item() < 1e-13


def test_a_packed_row_gives_each_document_its_own_logits():
    """GPT with the document mask on one packed row == GPT without it on each document alone
    (RoPE is relative, so the documents' offsets in the row do not matter), in float64."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=32, num_layers=3, model_dim=32, num_heads=4, num_kv_heads=2)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    docs = [[BOS, 5, 9, 3, 7], [BOS, 4, 4, 8, 2, 11, 6, 3], [BOS, 12], [BOS, 3, 3, 3, 9, 10]]
    row = torch.tensor([sum(docs, [])])
    model.set_document_mask(DocumentMask(BOS, 0))
    packed = model.forward_logits(row)[0]
    model.set_document_mask(None)
    alone = torch.cat([model.forward_logits(torch.tensor([d]))[0] for d in docs])
    assert (packed - alone).abs().max().item() < 1e-10
    crossed = model.forward_logits(row)[0]
    assert (crossed - alone).abs().max().item() > 1e-4  # without the mask documents do leak

    # the loss with cu_seqlens handed in (the training loop's way) equals the derived one
    model.set_document_mask(DocumentMask(BOS, 0))
    y = torch.roll(row, -1, 1)
    derived = model(row, y)
    given = model(row, y, cu_seqlens_for(row, BOS, 0))
    assert derived.item() == given.item()


def test_document_mask_refuses_a_negative_length():
    with pytest.raises(ValueError, match="max_len"):
        DocumentMask(1, -1)


def test_flash_backends_get_the_flattened_tokens_and_cu_seqlens(monkeypatch):
    """The FA3 path hands flash_attn_varlen_func the [B*T, H, D] tokens and cu_seqlens; with a
    stand-in that attends each segment alone it equals the SDPA path."""
    import sys
    import types

    import golf_core.model.attention as A

    calls = []

    def varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal):
        calls.append((q.shape, max_seqlen_q))
        assert causal and torch.equal(cu_seqlens_q, cu_seqlens_k) and q.ndim == 3
        out = torch.zeros_like(q)
        cu = cu_seqlens_q.tolist()
        for a, b in zip(cu[:-1], cu[1:]):
            if b > a:
                assert b - a <= max_seqlen_q
                out[a:b] = reference_attention(q[None, a:b], k[None, a:b], v[None, a:b], [[0] * (b - a)])[0]
        return out, None  # some FA3 builds return (out, lse)

    monkeypatch.setitem(sys.modules, "flash_attn_interface", types.SimpleNamespace(flash_attn_varlen_func=varlen))
    monkeypatch.setattr(A, "_flash_funcs", {})
    g = torch.Generator().manual_seed(3)
    rows = [random_row(random.Random(4), 17, 0.2) for _ in range(2)]
    q = torch.randn(2, 17, 4, 8, generator=g, dtype=torch.float64)
    k = torch.randn(2, 17, 2, 8, generator=g, dtype=torch.float64)
    v = torch.randn(2, 17, 2, 8, generator=g, dtype=torch.float64)
    cu = cu_seqlens_for(torch.tensor(rows), BOS, 6)
    flash = document_attention(q, k, v, cu, 6, "flash3")
    assert calls == [((34, 4, 8), 6)]
    assert (flash - document_attention(q, k, v, cu, 6, "sdpa")).abs().max().item() < 1e-13
