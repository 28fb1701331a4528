"""Documents of the validation stream and the evaluation orders over them (PR #1530's
document-independent TTT; research: every later record).

Every document starts with the BOS token. Target ``t`` is token ``t + 1`` (see
``golf_core.eval.windows``); document ``d`` owns the targets ``[b_d, b_{d+1})`` with ``b_d`` the
position of its BOS, so its inputs start at its BOS and its last target is the next document's
BOS (#1530 ``_find_docs``: a document spans its BOS to the next BOS inclusive). The last
document ends at the stream's end; tokens before the first BOS (none in the challenge's
stream) form a document of their own, so the documents cover every target exactly once.

A *document order* is a list of groups of documents: the groups are evaluated one after the
other; the documents of one group together (a batch, each with its own state). #1530 sorts the
documents by length, cuts the sorted list into groups of ``batch`` and takes the group with the
longest document first (``length_order``). The order reads the document lengths, i.e. where
the BOS tokens are: the records' evaluation assumes that structure is known before scoring.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golf_core.errors import GolfError


@dataclass(frozen=True)
class Document:
    """Document ``index`` (stream order): targets ``[target_lo, target_hi)``; ``length``: its
    tokens as #1530 counts them (the next BOS included; the last document has none), the key of
    ``length_order``."""

    index: int
    target_lo: int
    target_hi: int
    length: int

    @property
    def num_targets(self) -> int:
        """Targets of the document (its tokens, the first BOS excluded, the next BOS included)."""
        return self.target_hi - self.target_lo


def find_documents(tokens, bos_id: int) -> list[Document]:
    """The documents of a token stream (see the module docstring)."""
    t = np.asarray(tokens).reshape(-1)
    n = t.shape[0] - 1
    if n < 1:
        raise GolfError(f"find_documents: a stream of {t.shape[0]} tokens has no target")
    starts = np.flatnonzero(t[:-1] == bos_id).tolist()
    if not starts or starts[0] != 0:
        starts = [0] + starts
    ends = starts[1:] + [n]
    return [Document(i, a, b, b - a + (1 if b < n else 0)) for i, (a, b) in enumerate(zip(starts, ends))]


def length_batches(documents: list[Document], batch: int) -> list[tuple[int, list[Document]]]:
    """#1530's queue: documents sorted by length (stable, ascending), cut into groups of ``batch``,
    groups taken longest-first (by their longest document; stable among equals); each group with
    its index in the ascending cut (#1626 orders scored documents by it)."""
    if batch < 1:
        raise GolfError(f"length_order: batch must be positive, got {batch}")
    by_len = sorted(documents, key=lambda d: d.length)
    groups = [by_len[i:i + batch] for i in range(0, len(by_len), batch)]
    return sorted(enumerate(groups), key=lambda ig: -max(d.length for d in ig[1]))


def length_order(documents: list[Document], batch: int) -> list[list[Document]]:
    """The groups of ``length_batches`` in queue order."""
    return [g for _, g in length_batches(documents, batch)]


def order_ranks(groups: list[list[Document]], num_targets: int) -> np.ndarray:
    """The targets in evaluation order: group by group, document by document, left to right
    (a permutation of ``range(num_targets)``; ``perm[e]`` is the ``e``-th target evaluated)."""
    parts = [np.arange(d.target_lo, d.target_hi, dtype=np.int64) for g in groups for d in g]
    perm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if perm.shape[0] != num_targets or not np.array_equal(np.sort(perm), np.arange(num_targets)):
        raise GolfError(f"a document order must cover each of the {num_targets} targets once "
                        f"(it covers {perm.shape[0]})")
    return perm
