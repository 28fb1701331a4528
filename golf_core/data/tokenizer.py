"""SentencePiece tokenizers and the byte lookup tables behind BPB (research/pg_core.md §2.6, §3.1-3.2).

``train_tokenizer`` uses the challenge's trainer settings at any vocab size. ``build_byte_luts``
builds the three tables exactly as the challenge's ``build_sentencepiece_luts`` does, plus the
check (PR #1394, issue #897) that "▁" is a piece of its own. ``target_bytes`` counts the bytes of
each scored target from its previous token.
"""
from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from golf_core.errors import TokenizerError

SPACE_PIECE = "\u2581"  # "▁", SentencePiece's whitespace marker

#: The challenge's SentencePiece trainer settings (pg_core.md §2.6); vocab_size and model_prefix are added per call.
TRAINER_SETTINGS: dict[str, Any] = {
    "model_type": "bpe",
    "character_coverage": 0.999,
    "byte_fallback": True,
    "split_digits": True,
    "normalization_rule_name": "nmt_nfkc",
    "add_dummy_prefix": False,
    "pad_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "unk_id": 3,
    "hard_vocab_limit": False,
}

BOS_ID = TRAINER_SETTINGS["bos_id"]


def _training_texts(texts: Iterable[str]) -> Iterable[str]:
    """The challenge's training-text cleanup: NUL -> space, strip, skip empty."""
    for text in texts:
        text = text.replace("\x00", " ").strip()
        if text:
            yield text


def _stderr_has_fd() -> bool:
    try:
        sys.stderr.fileno()
        return True
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return False


def train_tokenizer(texts: Iterable[str], vocab_size: int, model_prefix, *, quiet: bool = True,
                    **overrides: Any) -> Path:
    """Train a SentencePiece BPE on ``texts`` with the challenge's settings; return the ``.model`` path.

    Writes ``<model_prefix>.model`` and ``<model_prefix>.vocab``. ``overrides`` are merged into the
    trainer kwargs like the challenge's ``trainer_overrides``. Texts are cleaned as the challenge
    does for training only (NUL replaced by a space, stripped, empty ones skipped).
    """
    import sentencepiece as spm

    if vocab_size < 261:
        raise TokenizerError(
            f"vocab_size {vocab_size} is too small: byte fallback alone needs 256 byte pieces + 4 specials")
    prefix = Path(model_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = dict(TRAINER_SETTINGS)
    kwargs.update(sentence_iterator=iter(_training_texts(texts)), vocab_size=int(vocab_size))
    kwargs.update(overrides)
    # The model comes back in memory (model_writer) rather than through a model_prefix: the prefix
    # would be recorded inside the .model (its trainer spec), so the bytes would depend on where
    # the build ran. Training itself is deterministic, so a rebuild gives the same .model bytes.
    proto = io.BytesIO()
    try:
        if quiet and _stderr_has_fd():  # sentencepiece's logstream redirects file descriptor 2
            with open(os.devnull, "w") as devnull:
                spm.SentencePieceTrainer.train(logstream=devnull, model_writer=proto, **kwargs)
        else:
            spm.SentencePieceTrainer.train(model_writer=proto, **kwargs)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = reason.split("] ", 1)[-1]
        raise TokenizerError(f"{prefix}: SentencePiece training failed: {reason}") from None
    model = Path(str(prefix) + ".model")
    if not proto.getvalue():
        raise TokenizerError(f"{model}: SentencePiece training wrote no model")
    model.write_bytes(proto.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    # the .vocab file SentencePiece writes beside a model: "piece<TAB>score" per id
    Path(str(prefix) + ".vocab").write_text(
        "".join(f"{sp.id_to_piece(i)}\t{sp.get_score(i):g}\n" for i in range(sp.get_piece_size())), encoding="utf-8")
    return model


def load_tokenizer(path, vocab_size: Optional[int] = None):
    """Load a SentencePiece model; TokenizerError if it is missing, unreadable, or its vocab size
    differs from ``vocab_size`` (the recipe's)."""
    import sentencepiece as spm

    path = Path(path)
    if not path.is_file():
        raise TokenizerError(f"{path}: tokenizer model not found")
    try:
        sp = spm.SentencePieceProcessor(model_file=str(path))
    except Exception as exc:  # sentencepiece raises OSError/RuntimeError with a long message
        raise TokenizerError(f"{path}: not a readable SentencePiece model ({type(exc).__name__})") from None
    if vocab_size is not None and int(sp.vocab_size()) != int(vocab_size):
        raise TokenizerError(
            f"{path}: tokenizer vocab size {sp.vocab_size()} differs from the recipe's vocab_size {vocab_size}")
    return sp


@dataclass(frozen=True)
class ByteLuts:
    """The challenge's byte tables, indexed by token id (pg_core.md §3.1).

    base_bytes: int16 UTF-8 bytes of the piece without its leading "▁" (byte-fallback pieces: 1;
    control/unknown/unused/padding ids: 0); has_leading_space: piece starts with "▁";
    is_boundary: control/unknown/unused/padding ids (BOS, EOS, PAD, UNK).
    """

    base_bytes: np.ndarray
    has_leading_space: np.ndarray
    is_boundary: np.ndarray

    @property
    def size(self) -> int:
        """Number of ids covered (max of the tokenizer's and the model's vocab size)."""
        return int(self.base_bytes.shape[0])

    def to_torch(self, device="cpu") -> "TorchByteLuts":
        """The same tables as torch tensors on ``device``."""
        import torch

        return TorchByteLuts(
            base_bytes=torch.as_tensor(self.base_bytes, dtype=torch.int16).to(device),
            has_leading_space=torch.as_tensor(self.has_leading_space, dtype=torch.bool).to(device),
            is_boundary=torch.as_tensor(self.is_boundary, dtype=torch.bool).to(device),
        )


@dataclass(frozen=True)
class TorchByteLuts:
    """``ByteLuts`` as torch tensors on one device (see ``ByteLuts.to_torch``)."""

    base_bytes: Any
    has_leading_space: Any
    is_boundary: Any


def build_byte_luts(sp, vocab_size: Optional[int] = None, *, check_space_piece: bool = True) -> ByteLuts:
    """Build the challenge's byte tables from a SentencePiece processor (pg_core.md §3.1).

    The tables have ``max(sp.vocab_size(), vocab_size)`` entries; ids past the tokenizer's vocab
    are boundaries with 0 bytes. With ``check_space_piece`` (default), raise TokenizerError when
    "▁" is not a piece of its own (it would be byte-fallback-encoded and counted as 3 bytes).
    """
    sp_vocab = int(sp.vocab_size())
    table_size = max(sp_vocab, int(vocab_size or 0))
    if check_space_piece and sp.piece_to_id(SPACE_PIECE) == sp.unk_id():
        raise TokenizerError(
            "tokenizer has no piece for '\u2581' on its own: spaces would be counted as 3 bytes "
            "(PR #1394 / issue #897); retrain it")
    base_bytes = np.zeros(table_size, dtype=np.int16)
    has_leading_space = np.zeros(table_size, dtype=np.bool_)
    is_boundary = np.ones(table_size, dtype=np.bool_)
    for token_id in range(sp_vocab):
        if sp.is_control(token_id) or sp.is_unknown(token_id) or sp.is_unused(token_id):
            continue
        is_boundary[token_id] = False
        if sp.is_byte(token_id):
            base_bytes[token_id] = 1
            continue
        piece = sp.id_to_piece(token_id)
        if piece.startswith(SPACE_PIECE):
            has_leading_space[token_id] = True
            piece = piece[1:]
        base_bytes[token_id] = len(piece.encode("utf-8"))
    return ByteLuts(base_bytes, has_leading_space, is_boundary)


def target_bytes(luts: ByteLuts, prev_ids, target_ids):
    """Bytes of each target token given its previous token (pg_core.md §3.2):
    ``base_bytes[t] + (has_leading_space[t] and not is_boundary[p])``.

    Works on numpy arrays (returns int64) or torch tensors (returns int64 on their device).
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        torch = None
    if torch is not None and isinstance(target_ids, torch.Tensor):
        t = luts.to_torch(target_ids.device) if isinstance(luts, ByteLuts) else luts
        tgt = target_ids.long()
        prev = torch.as_tensor(prev_ids, device=target_ids.device).long()
        out = t.base_bytes[tgt].long()
        out += (t.has_leading_space[tgt] & ~t.is_boundary[prev]).long()
        return out
    tgt = np.asarray(target_ids).astype(np.int64, copy=False)
    prev = np.asarray(prev_ids).astype(np.int64, copy=False)
    out = luts.base_bytes[tgt].astype(np.int64)
    out += (luts.has_leading_space[tgt] & ~luts.is_boundary[prev]).astype(np.int64)
    return out
