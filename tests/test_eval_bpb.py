"""BPB = loss / ln 2 * tokens / bytes, end to end on the demo validation stream."""
from __future__ import annotations

import math
import re

import pytest
import torch

from golf_core.data.tokenizer import load_tokenizer
from golf_core.data.validation import load_validation_tokens
from golf_core.eval import EvalResult, EvalSession, bits_per_byte, score_fixed


def test_formula():
    assert bits_per_byte(math.log(2), 10, 10) == pytest.approx(1.0)
    assert bits_per_byte(2.0, 300, 1000) == pytest.approx(2.0 / math.log(2) * 0.3)
    assert math.isnan(bits_per_byte(1.0, 1, 0))
    r = EvalResult.from_sums(30.0, 10, 25, True)
    assert r.val_loss == 3.0 and r.val_bpb == pytest.approx(3.0 / math.log(2) * 10 / 25)
    d = r.to_dict()
    assert d["val_tokens"] == 10 and d["val_bytes"] == 25 and d["coverage_ok"] is True


class Uniform(torch.nn.Module):
    """Every position predicts the uniform distribution: NLL = ln V for every target."""

    def __init__(self, vocab):
        super().__init__()
        self.vocab = vocab

    def forward_logits(self, x):
        return torch.zeros(*x.shape, self.vocab)


def test_demo_validation_end_to_end(demo_data):
    sp = load_tokenizer(demo_data.tokenizer_path, 1024)
    tokens = load_validation_tokens(demo_data.val_files, 1024)
    assert (len(tokens) - 1) % 1024 == 0
    session = EvalSession(tokens, demo_data.byte_luts(), 1024, None, batch_seqs=8)
    res = score_fixed(Uniform(1024), session)
    # brute-force bytes: each target's piece by hand, leading '▁' = 1 byte unless after a special
    special = {0, 1, 2, 3}
    t = tokens.tolist()
    nbytes = 0
    for p, c in zip(t[:-1], t[1:]):
        piece = sp.id_to_piece(c)
        if c in special:
            continue
        if re.fullmatch(r"<0x[0-9A-F]{2}>", piece):
            nbytes += 1
        elif piece.startswith("\u2581"):
            nbytes += len(piece[1:].encode()) + (p not in special)
        else:
            nbytes += len(piece.encode())
    n = len(t) - 1
    assert res.coverage_ok and res.tokens == n and res.bytes == nbytes
    assert res.val_loss == pytest.approx(math.log(1024), abs=1e-6)  # float32 logits
    assert res.val_bpb == pytest.approx(res.val_loss / math.log(2) * n / nbytes, abs=1e-12)
    assert res.val_bpb == pytest.approx(10.0 * n / nbytes, abs=1e-6)
