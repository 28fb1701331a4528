"""Data: the challenge's shard format, tokenizers and byte tables, the demo corpus, dataset
builder (with its train/validation split check) and downloader, the CaseOps variant (case
transform and byte sidecar), the baseline loader and the validation stream.

Torch-dependent names (``SequentialLoader``, ``read_window``, ``load_validation_tokens``) are
imported lazily so that ``golf data ...`` starts fast.
"""
from __future__ import annotations

from golf_core.data.paths import DataPaths, default_root, layout, list_shards, resolve_data
from golf_core.data.shards import num_tokens, read_shard, write_shard
from golf_core.data.tokenizer import (
    ByteLuts,
    build_byte_luts,
    load_tokenizer,
    target_bytes,
    train_tokenizer,
)

_LAZY = {
    "SequentialLoader": "golf_core.data.loaders",
    "read_window": "golf_core.data.loaders",
    "load_validation_tokens": "golf_core.data.validation",
    "build_dataset": "golf_core.data.build",
    "cached_dataset": "golf_core.data.build",
    "download": "golf_core.data.download",
    "demo_documents": "golf_core.data.demo_corpus",
    "corpus_sha256": "golf_core.data.demo_corpus",
    "NUM_VAL_DOCS": "golf_core.data.demo_corpus",
    "inspect_dataset": "golf_core.data.inspect",
}

__all__ = [
    "DataPaths", "default_root", "layout", "list_shards", "resolve_data",
    "num_tokens", "read_shard", "write_shard",
    "ByteLuts", "build_byte_luts", "load_tokenizer", "target_bytes", "train_tokenizer",
    *_LAZY,
]


def __getattr__(name: str):
    """Import the lazily exported names on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'golf_core.data' has no attribute {name!r}")
