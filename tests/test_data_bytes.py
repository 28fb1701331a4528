"""BPB bytes on the demo validation set equal an independent brute-force count, token for token."""
from __future__ import annotations

import re

import numpy as np
import pytest

from golf_core.data.shards import read_shard
from golf_core.data.tokenizer import build_byte_luts, load_tokenizer, target_bytes

_BYTE_PIECE = re.compile(r"^<0x[0-9A-F]{2}>$")


@pytest.fixture(scope="module")
def demo_val(demo_data):
    sp = load_tokenizer(demo_data.tokenizer_path, demo_data.vocab_size)
    tokens = np.concatenate([np.asarray(read_shard(f), dtype=np.int64) for f in demo_data.val_files])
    return sp, tokens


def _brute_force_bytes(sp, tokens) -> list[int]:
    """Bytes of every target tokens[1:], one token at a time: decode the piece by hand, a byte
    piece <0xNN> is one byte, the special pieces none, and a leading '▁' is one space unless the
    previous token is a special one."""
    special = {sp.id_to_piece(i) for i in (sp.pad_id(), sp.bos_id(), sp.eos_id(), sp.unk_id())}
    out = []
    for prev, tok in zip(tokens[:-1].tolist(), tokens[1:].tolist()):
        piece = sp.id_to_piece(tok)
        prev_piece = sp.id_to_piece(prev)
        if piece in special:
            out.append(0)
        elif _BYTE_PIECE.match(piece):
            out.append(1)
        elif piece.startswith("\u2581"):
            out.append(len(piece[1:].encode("utf-8")) + (0 if prev_piece in special else 1))
        else:
            out.append(len(piece.encode("utf-8")))
    return out


def test_lut_bytes_equal_brute_force_token_for_token(demo_val):
    sp, tokens = demo_val
    luts = build_byte_luts(sp, 1024)
    got = target_bytes(luts, tokens[:-1], tokens[1:])
    want = np.array(_brute_force_bytes(sp, tokens))
    assert got.shape == want.shape and len(want) > 100_000
    mismatch = np.nonzero(got != want)[0]
    assert mismatch.size == 0, f"first mismatch at target {mismatch[:5]}"


def test_bytes_equal_decoded_utf8_per_document(demo_val):
    """Each validation document's byte count equals the UTF-8 length of its decoded text."""
    sp, tokens = demo_val
    luts = build_byte_luts(sp, 1024)
    per_target = target_bytes(luts, tokens[:-1], tokens[1:])
    bos = np.nonzero(tokens == sp.bos_id())[0].tolist() + [len(tokens)]
    assert bos[0] == 0 and len(bos) - 1 == 300
    for a, b in zip(bos[:-1], bos[1:]):
        text = sp.decode(tokens[a + 1: b].tolist())
        # targets a..b-2 are tokens a+1..b-1 of this document; the BOS target itself has 0 bytes
        assert int(per_target[a: b - 1].sum()) == len(text.encode("utf-8"))
