"""Tokenizer training with the challenge's settings (pg_core.md §2.6) and the byte tables (§3.1-3.2)."""
from __future__ import annotations

import numpy as np
import pytest

from golf_core.data import tokenizer as tk
from golf_core.data.demo_corpus import demo_documents
from golf_core.errors import TokenizerError

VOCAB = 384


@pytest.fixture(scope="module")
def small_sp(tmp_path_factory):
    """A vocab-384 tokenizer trained on 300 demo documents (fast)."""
    prefix = tmp_path_factory.mktemp("tok") / "small_384_bpe"
    model = tk.train_tokenizer(demo_documents()[:300], VOCAB, prefix)
    return tk.load_tokenizer(model, VOCAB), model


def test_trainer_kwargs_are_the_challenges(monkeypatch, tmp_path):
    import sentencepiece as spm

    seen = {}

    def fake_train(**kwargs):
        seen.update(kwargs)
        seen["texts"] = list(kwargs.pop("sentence_iterator"))

    monkeypatch.setattr(spm.SentencePieceTrainer, "train", staticmethod(fake_train))
    with pytest.raises(TokenizerError):  # the fake wrote no model
        tk.train_tokenizer(["  a\x00b  ", "", "   ", "text"], 512, tmp_path / "x_512_bpe")
    assert seen["texts"] == ["a b", "text"]  # NUL -> space, strip, empty skipped
    expected = dict(model_type="bpe", vocab_size=512,
                    character_coverage=0.999, byte_fallback=True, split_digits=True,
                    normalization_rule_name="nmt_nfkc", add_dummy_prefix=False, pad_id=0, bos_id=1,
                    eos_id=2, unk_id=3, hard_vocab_limit=False)
    for key, value in expected.items():
        assert seen[key] == value, key
    # the model comes back through model_writer: no model_prefix, so no path inside the .model
    assert set(seen) - {"logstream", "texts", "sentence_iterator", "model_writer"} == set(expected)


def test_tokenizer_build_is_deterministic_and_location_free(tmp_path):
    """Issue 16: the demo tokenizer's .model differed in bytes on each rebuild (the trainer spec
    recorded the temporary model_prefix). Two builds in different folders: the same bytes."""
    docs = demo_documents()[:300]
    a = tk.train_tokenizer(docs, VOCAB, tmp_path / "one" / "t_384_bpe")
    b = tk.train_tokenizer(docs, VOCAB, tmp_path / "two-elsewhere" / "t_384_bpe")
    assert a.read_bytes() == b.read_bytes()
    assert str(tmp_path).encode() not in a.read_bytes()
    vocab = a.with_suffix(".vocab").read_text(encoding="utf-8").splitlines()
    sp = tk.load_tokenizer(a, VOCAB)
    assert len(vocab) == VOCAB and vocab[5].split("\t")[0] == sp.id_to_piece(5)


def test_trained_tokenizer_behaves_like_the_settings(small_sp):
    sp, _ = small_sp
    assert sp.vocab_size() == VOCAB
    assert (sp.pad_id(), sp.bos_id(), sp.eos_id(), sp.unk_id()) == (0, 1, 2, 3)
    digits = [sp.id_to_piece(i) for i in sp.encode("2024")]
    assert digits == ["2", "0", "2", "4"]  # split_digits
    assert not sp.id_to_piece(sp.encode("hello world")[0]).startswith("\u2581")  # no dummy prefix
    rare = sp.encode("\u01c2")  # a click letter: not in the alphabet -> byte fallback
    assert all(sp.is_byte(i) for i in rare) and len(rare) == len("\u01c2".encode())
    assert sp.piece_to_id("\u2581") != sp.unk_id()


def test_vocab_mismatch_is_one_line(small_sp):
    _, model = small_sp
    with pytest.raises(TokenizerError) as e:
        tk.load_tokenizer(model, 1024)
    msg = str(e.value)
    assert "\n" not in msg and str(model) in msg and "384" in msg and "1024" in msg


def test_missing_and_garbage_tokenizer(tmp_path):
    with pytest.raises(TokenizerError, match="not found"):
        tk.load_tokenizer(tmp_path / "none.model")
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match="bad.model"):
        tk.load_tokenizer(bad)


class StubSP:
    """A hand-made vocabulary to check the tables entry by entry."""

    pieces = ["<pad>", "<s>", "</s>", "<unk>", "<0x41>", "<0xE2>", "\u2581", "\u2581the", "ing",
              "\u00e9t\u00e9", "\u2581\u00fcber", "<ctl>"]
    kinds = {0: "control", 1: "control", 2: "control", 3: "unknown", 4: "byte", 5: "byte", 11: "unused"}

    def __init__(self, with_space=True):
        self.with_space = with_space

    def vocab_size(self):
        return len(self.pieces)

    def is_control(self, i):
        return self.kinds.get(i) == "control"

    def is_unknown(self, i):
        return self.kinds.get(i) == "unknown"

    def is_unused(self, i):
        return self.kinds.get(i) == "unused"

    def is_byte(self, i):
        return self.kinds.get(i) == "byte"

    def id_to_piece(self, i):
        return self.pieces[i]

    def unk_id(self):
        return 3

    def piece_to_id(self, piece):
        if piece == "\u2581" and not self.with_space:
            return 3
        return self.pieces.index(piece) if piece in self.pieces else 3


def test_luts_by_hand():
    luts = tk.build_byte_luts(StubSP(), 16)
    assert luts.size == 16
    #                 pad s  /s unk A  E2 ▁  ▁the ing été ▁über ctl pad...
    assert luts.base_bytes.tolist() == [0, 0, 0, 0, 1, 1, 0, 3, 3, 5, 5, 0, 0, 0, 0, 0]
    assert luts.has_leading_space.tolist() == [False] * 6 + [True, True, False, False, True] + [False] * 5
    assert luts.is_boundary.tolist() == [True] * 4 + [False] * 7 + [True] * 5
    assert luts.base_bytes.dtype == np.int16


def test_space_piece_check():
    with pytest.raises(TokenizerError, match="\u2581"):
        tk.build_byte_luts(StubSP(with_space=False), 12)
    tk.build_byte_luts(StubSP(with_space=False), 12, check_space_piece=False)


def test_target_bytes_rule_numpy_and_torch():
    import torch

    luts = tk.build_byte_luts(StubSP(), 12)
    prev = np.array([1, 7, 7, 3, 8, 8, 11, 9])
    tgt = np.array([7, 7, 8, 10, 10, 6, 7, 1])
    # ▁the after BOS: 3; after ▁the: 4; ing: 3; ▁über after unk: 5; after ing: 6; ▁ after ing: 1;
    # ▁the after an unused id (boundary): 3; BOS target: 0
    want = [3, 4, 3, 5, 6, 1, 3, 0]
    assert tk.target_bytes(luts, prev, tgt).tolist() == want
    got = tk.target_bytes(luts, torch.tensor(prev), torch.tensor(tgt))
    assert got.dtype == torch.int64 and got.tolist() == want
    tl = luts.to_torch("cpu")
    assert tl.base_bytes.dtype == torch.int16 and tl.is_boundary.dtype == torch.bool
