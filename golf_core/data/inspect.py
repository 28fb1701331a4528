"""What a dataset folder holds: shards, tokens, bytes, tokens per byte, documents, first text.

Bytes use the challenge's BPB rule (pg_core.md §3.2) over each split's token stream, so
``tokens / bytes`` is the factor that turns bits per token into bits per byte. A CaseOps dataset's
validation shards count their byte sidecar (the original text's bytes); its training shards, which
have none, count the byte tables with the case markers at 0 bytes. Its first text is shown decoded.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from golf_core.data.caseops import CONTROLS, CaseOpsError, is_caseops_tokenizer
from golf_core.data.caseops import decode as caseops_decode
from golf_core.data.paths import list_shards, tokenizer_for_dataset_dir
from golf_core.data.shards import read_shard
from golf_core.data.tokenizer import BOS_ID, build_byte_luts, load_tokenizer
from golf_core.errors import DataError

_CHUNK = 1 << 24


@dataclass
class ShardInfo:
    """One shard: file name, split, token count, LUT byte count and documents (BOS count)."""

    file: str
    split: str
    tokens: int
    bytes: int
    docs: int


@dataclass
class DatasetReport:
    """``inspect_dataset``'s answer: per-shard figures, per-split totals and the first decoded text."""

    dataset_dir: str
    tokenizer: str
    vocab_size: int
    shards: list = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    first_text: str = ""

    def to_dict(self) -> dict:
        """JSON-able form."""
        return asdict(self)


def dataset_dirs(path) -> list[Path]:
    """``path`` itself when it holds shards, else its ``datasets/*`` folders that do (sorted)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: no such folder")
    if list_shards(path, "train") or list_shards(path, "val"):
        return [path]
    base = path / "datasets" if (path / "datasets").is_dir() else path
    found = [d for d in sorted(base.iterdir()) if d.is_dir() and (list_shards(d, "train") or list_shards(d, "val"))]
    if not found:
        raise DataError(f"{path}: holds no fineweb_{{train,val}}_*.bin shards")
    return found


def inspect_dataset(dataset_dir, tokenizer_path=None, text_chars: int = 400) -> DatasetReport:
    """Count tokens, bytes and documents of every shard of ``dataset_dir`` and decode the start of
    its first document (validation split first). The tokenizer defaults to the dataset's own
    (manifest or layout)."""
    dataset_dir = Path(dataset_dir).expanduser()
    tok = Path(tokenizer_path).expanduser() if tokenizer_path else tokenizer_for_dataset_dir(dataset_dir)
    sp = load_tokenizer(tok)
    files = {"val": list_shards(dataset_dir, "val"), "train": list_shards(dataset_dir, "train")}
    max_id = 0
    maps = {}
    for split, paths in files.items():
        for p in paths:
            toks = read_shard(p)
            maps[p] = toks
            if toks.shape[0]:
                max_id = max(max_id, int(toks.max()))
    luts = build_byte_luts(sp, max(int(sp.vocab_size()), max_id + 1), check_space_piece=False)
    caseops_tok = is_caseops_tokenizer(sp)
    if caseops_tok:  # the case markers stand for no original byte (the byte tables give them 3)
        luts.base_bytes[[sp.piece_to_id(c) for c in CONTROLS]] = 0
    sidecars = {p.name.replace("val_bytes_", "val_"): p for p in list_shards(dataset_dir, "val_bytes")}
    report = DatasetReport(str(dataset_dir), str(tok), int(sp.vocab_size()))
    for split, paths in files.items():
        prev_last = BOS_ID  # the stream's first token has no previous token: treat as a boundary
        tot = {"shards": 0, "tokens": 0, "bytes": 0, "docs": 0}
        for p in paths:
            toks = maps[p]
            n_bytes = n_docs = 0
            for start in range(0, toks.shape[0], _CHUNK):
                chunk = np.asarray(toks[start: start + _CHUNK], dtype=np.int64)
                prev = np.empty_like(chunk)
                prev[0] = prev_last
                prev[1:] = chunk[:-1]
                n_bytes += int(luts.base_bytes[chunk].sum(dtype=np.int64))
                n_bytes += int((luts.has_leading_space[chunk] & ~luts.is_boundary[prev]).sum())
                n_docs += int((chunk == BOS_ID).sum())
                prev_last = int(chunk[-1])
            if p.name in sidecars:  # CaseOps: the original text's bytes, exactly
                n_bytes = int(np.asarray(read_shard(sidecars[p.name]), dtype=np.int64).sum())
            report.shards.append(ShardInfo(p.name, split, int(toks.shape[0]), n_bytes, n_docs))
            tot["shards"] += 1
            tot["tokens"] += int(toks.shape[0])
            tot["bytes"] += n_bytes
            tot["docs"] += n_docs
        tot["tokens_per_byte"] = tot["tokens"] / tot["bytes"] if tot["bytes"] else float("nan")
        report.totals[split] = tot
    first = next((maps[p] for split in ("val", "train") for p in files[split] if maps[p].shape[0]), None)
    if first is not None:
        head = np.asarray(first[: max(64, text_chars * 2)], dtype=np.int64)
        start = 1 if head[0] == BOS_ID else 0
        stop = np.nonzero(head[start:] == BOS_ID)[0]
        ids = head[start: start + int(stop[0])] if stop.size else head[start:]
        text = sp.decode([int(i) for i in ids])
        if caseops_tok:
            try:
                text = caseops_decode(text)
            except CaseOpsError:  # normalization made it non-canonical: show the markers' text
                pass
        report.first_text = text[:text_chars]
    return report
