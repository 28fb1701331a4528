"""The train/validation split check of a dataset build: no validation document in training.

Every document's text is hashed (SHA-256 of its UTF-8 bytes); a validation document whose hash
is also a training document's is in training. The CaseOps data prep's default put 40,000 of
the 50,000 official validation documents into training (openai/parameter-golf issue #2127);
this check, run by every ``golf data build`` before any shard is written, stops such a split.
The result is kept in the dataset's ``manifest.json`` (``split_check``), where ``golf check``'s
document-overlap rule reads it beside its own token-level hashes.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Sequence

from golf_core.errors import DataError

#: How documents are compared (recorded in the manifest).
HASH = "sha256 of the document's UTF-8 text"


def document_hash(text: str) -> str:
    """SHA-256 (hex) of a document's UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


@dataclass
class SplitCheck:
    """val_docs / train_docs: documents compared; shared: validation documents whose text is also
    a training document's; examples: the first few such validation document indices;
    train_dropped: training documents left out because they repeat a validation document."""

    val_docs: int = 0
    train_docs: int = 0
    shared: int = 0
    examples: list = field(default_factory=list)
    train_dropped: int = 0
    hash: str = HASH

    def as_dict(self) -> dict:
        """Plain data for manifest.json."""
        return asdict(self)


def split_check(val_docs: Sequence[str], train_docs: Sequence[str], keep: int = 5) -> SplitCheck:
    """Compare the two splits' documents by hash (see the module docstring)."""
    train = {document_hash(d) for d in train_docs}
    hits = [i for i, d in enumerate(val_docs) if document_hash(d) in train]
    return SplitCheck(len(val_docs), len(train_docs), len(hits), hits[:keep])


def drop_validation_repeats(val_docs: Sequence[str], train_docs: Sequence[str]) -> tuple[list, int]:
    """The training documents that repeat no validation document, and how many were dropped."""
    val = {document_hash(d) for d in val_docs}
    kept = [d for d in train_docs if document_hash(d) not in val]
    return kept, len(train_docs) - len(kept)


def require_clean_split(check: SplitCheck, where: str, hint: str = "") -> None:
    """DataError (one line, naming the count and the first document) when validation documents
    are in training; ``hint`` says how to fix it."""
    if check.shared:
        raise DataError(f"{where}: {check.shared} of {check.val_docs} validation documents are also in the "
                        f"training split (first: validation document {check.examples[0]}); the split leaks "
                        f"validation text into training (cf. openai/parameter-golf#2127)" + (f"; {hint}" if hint else ""))
