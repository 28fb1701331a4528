"""Train/validation document overlap: every document (a BOS token up to the next BOS) of the
validation stream and of the training shards is hashed (BLAKE2b, 8 bytes, over its token ids);
a validation document whose hash is also a training document's was trained on. The CaseOps
data prep default put 40,000 of the 50,000 validation documents into training (issue #2127 of
openai/parameter-golf); a run on such data is scored on what it learned."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from ..data.shards import read_shard


def document_hashes(tokens: np.ndarray, bos: int) -> list[bytes]:
    """The hash of every whole document of ``tokens`` (from a BOS to the next, or the end);
    tokens before the first BOS (a document cut by a shard boundary) are skipped."""
    return [h for h, _ in _documents(tokens, bos)]


def _documents(tokens: np.ndarray, bos: int) -> list[tuple[bytes, int]]:
    t = np.ascontiguousarray(np.asarray(tokens, dtype=np.uint16))
    starts = np.flatnonzero(t == bos)
    ends = np.append(starts[1:], t.shape[0])
    return [(hashlib.blake2b(t[a:b].tobytes(), digest_size=8).digest(), int(b - a)) for a, b in zip(starts, ends)]


@dataclass
class Overlap:
    """val_docs / train_docs: documents hashed; shared: validation documents found in training;
    val_tokens / shared_tokens: their tokens (the share of the score the overlap touches);
    examples: the first few shared validation document indices; shards: training shards read."""

    val_docs: int = 0
    train_docs: int = 0
    shared: int = 0
    val_tokens: int = 0
    shared_tokens: int = 0
    examples: list[int] = field(default_factory=list)
    shards: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain data for compliance.json."""
        return {"val_docs": self.val_docs, "train_docs": self.train_docs, "shared": self.shared,
                "val_tokens": self.val_tokens, "shared_tokens": self.shared_tokens,
                "examples": self.examples, "train_shards": self.shards}


def document_overlap(val_tokens: np.ndarray, train_files: Iterable, bos: int, keep: int = 5) -> Overlap:
    """Hash the validation stream's documents and every training shard's; count the shared ones."""
    val = _documents(val_tokens, bos)
    index: dict[bytes, list[int]] = {}
    for i, (h, _) in enumerate(val):
        index.setdefault(h, []).append(i)
    out = Overlap(val_docs=len(val), val_tokens=sum(k for _, k in val))
    hit: set[int] = set()
    for f in train_files:
        hs = document_hashes(read_shard(f), bos)
        out.train_docs += len(hs)
        out.shards += 1
        for h in hs:
            if h in index:
                hit.update(index[h])
    out.shared = len(hit)
    out.shared_tokens = sum(val[i][1] for i in hit)
    out.examples = sorted(hit)[:keep]
    return out


def doc_of_target(tokens: Sequence[int], bos: int) -> np.ndarray:
    """For every target index ``k`` (token ``k + 1``), the document of token ``k`` (number of BOS
    tokens at positions ``<= k``)."""
    t = np.asarray(tokens)
    return np.cumsum(t[:-1] == bos).astype(np.int64)
