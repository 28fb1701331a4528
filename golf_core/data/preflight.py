"""Check every input a run will read before any compute is spent, and record what it read.

``preflight_run`` resolves a recipe's ``[data]`` (building the demo when missing) and checks, in
seconds, what training and scoring will later read: every shard's header and size (the checks of
``golf data inspect``, ``golf_core.data.shards``), that the tokenizer loads with the recipe's
vocab size and yields the byte tables, that the validation stream holds one sequence and only
token ids below the vocab size (the first tokens of each training shard are sampled for the
same). A problem raises ``DataError`` with one line naming the file. ``data_record`` is what
``manifest.json`` says about the data: tokenizer and every shard with path, size and sha256.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

from golf_core.data.paths import MANIFEST_NAME, DataPaths, resolve_data
from golf_core.data.shards import num_tokens, read_shard
from golf_core.errors import DataError

#: Tokens at the start of each training shard whose ids are checked against the vocab size.
TRAIN_SAMPLE_TOKENS = 1 << 16
#: Per-dataset cache of shard hashes, keyed by name, size and mtime (written when possible).
HASH_CACHE = ".golf_sha256.json"


def _check_ids(path: Path, tokens: np.ndarray, vocab_size: int) -> None:
    if tokens.shape[0] and int(tokens.max()) >= vocab_size:
        raise DataError(f"{path}: token id {int(tokens.max())} is outside the recipe's vocab_size {vocab_size} "
                        f"(a shard of another tokenizer?)")


def check_tokenizer(paths: DataPaths, vocab_size: int) -> None:
    """The tokenizer loads, has ``vocab_size`` pieces and yields the challenge's byte tables."""
    from golf_core.data.tokenizer import build_byte_luts

    sp = paths.load_tokenizer()  # TokenizerError naming the file
    try:
        build_byte_luts(sp, vocab_size)
    except DataError as e:
        msg = str(e)
        raise DataError(msg if str(paths.tokenizer_path) in msg else f"{paths.tokenizer_path}: {msg}") from None


def check_validation(paths: DataPaths, vocab_size: int, seq_len: int, max_tokens: Optional[int] = None) -> int:
    """Every validation shard is sound and their stream holds at least one ``seq_len`` window;
    returns the stream's token count."""
    total = 0
    for p in paths.val_files:
        tokens = read_shard(p)
        _check_ids(p, np.asarray(tokens), vocab_size)
        total += int(tokens.shape[0])
    usable = min(total, max_tokens) if max_tokens is not None else total
    if usable < seq_len + 1:
        raise DataError(f"{paths.dataset_dir}: the validation stream holds {usable} tokens, fewer than one "
                        f"eval window of seq_len {seq_len} + 1")
    return total


def check_training(paths: DataPaths, vocab_size: int, seq_len: int) -> int:
    """Every training shard's header and size are sound (a truncated shard is found now, not when
    the loader reaches it); returns the token count."""
    total = 0
    for p in paths.train_files:
        n = num_tokens(p)
        if n:
            _check_ids(p, np.asarray(read_shard(p)[:TRAIN_SAMPLE_TOKENS]), vocab_size)
        total += n
    if total < seq_len + 1:
        raise DataError(f"{paths.dataset_dir}: the training shards hold {total} tokens, fewer than one "
                        f"sequence of train_seq_len {seq_len} + 1")
    return total


def _say(msg: str) -> None:
    print(f"data: {msg}", file=sys.stderr, flush=True)


def preflight_run(recipe: Any) -> DataPaths:
    """Resolve and check everything a ``golf run`` of ``recipe`` will read (module docstring);
    a missing demo dataset is built first, saying what it does."""
    paths = resolve_data(recipe.data, build_missing=True, log=_say)
    vocab = recipe.data.vocab_size
    check_tokenizer(paths, vocab)
    check_training(paths, vocab, recipe.train.train_seq_len)
    check_validation(paths, vocab, recipe.eval.seq_len, recipe.eval.max_tokens)
    return paths


def preflight_eval(recipe: Any) -> DataPaths:
    """Resolve and check what ``golf eval`` reads: the tokenizer and the validation shards."""
    paths = resolve_data(recipe.data, build_missing=True, log=_say)
    check_tokenizer(paths, recipe.data.vocab_size)
    check_validation(paths, recipe.data.vocab_size, recipe.eval.seq_len, recipe.eval.max_tokens)
    return paths


# -- what manifest.json records ------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_cache(dataset_dir: Path) -> dict:
    try:
        data = json.loads((dataset_dir / HASH_CACHE).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_cache(dataset_dir: Path, cache: dict) -> None:
    tmp = dataset_dir / f"{HASH_CACHE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
        os.replace(tmp, dataset_dir / HASH_CACHE)
    except OSError:  # a read-only dataset folder: hashes are recomputed next time
        tmp.unlink(missing_ok=True)


def seed_hash_cache(dataset_dir: Path) -> None:
    """Hash every shard of a folder just written (``golf data build``) into the cache that
    ``data_record`` reads, so that a run's manifest does not open the shards again (under
    ``golf check`` such an open of a validation shard would be a read outside the eval session)."""
    dataset_dir = Path(dataset_dir)
    cache = _load_cache(dataset_dir)
    for p in sorted(dataset_dir.glob("fineweb_*.bin")):
        st = p.stat()
        cache[f"{p.name}:{st.st_size}:{st.st_mtime_ns}"] = file_sha256(p)
    _save_cache(dataset_dir, cache)


def data_record(paths: DataPaths) -> dict[str, Any]:
    """``manifest.json["data"]``: the dataset folder, its own manifest's sha256 when it has one,
    the tokenizer and every shard (path, size, sha256; hashes cached beside the shards)."""
    cache = _load_cache(paths.dataset_dir)
    changed = False

    def entry(p: Path) -> dict[str, Any]:
        nonlocal changed
        st = p.stat()
        key = f"{p.name}:{st.st_size}:{st.st_mtime_ns}"
        if key not in cache:
            cache[key] = file_sha256(p)
            changed = True
        return {"path": str(p.resolve()), "size": st.st_size, "sha256": cache[key]}

    record: dict[str, Any] = {
        "dataset_dir": str(paths.dataset_dir.resolve()),
        "name": paths.name,
        "vocab_size": paths.vocab_size,
        "tokenizer": {"path": str(paths.tokenizer_path.resolve()), "size": paths.tokenizer_path.stat().st_size,
                      "sha256": file_sha256(paths.tokenizer_path)},
        "train_shards": [entry(Path(p)) for p in paths.train_files],
        "val_shards": [entry(Path(p)) for p in paths.val_files],
    }
    own = paths.dataset_dir / MANIFEST_NAME
    if own.is_file():
        record["data_manifest"] = {"path": str(own.resolve()), "sha256": file_sha256(own)}
    if changed:
        _save_cache(paths.dataset_dir, cache)
    return record
