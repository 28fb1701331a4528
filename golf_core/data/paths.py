"""Where a run's shards and tokenizer live (the challenge's layout), and ``resolve_data``.

Layout under a data root (pg_core.md §2.1)::

    <root>/datasets/<dataset>/fineweb_train_NNNNNN.bin, fineweb_val_NNNNNN.bin
    <root>/tokenizers/<tokenizer>.model

with ``<dataset>`` = ``fineweb10B_sp<V>`` and ``<tokenizer>`` = ``fineweb_<V>_bpe`` for FineWeb,
``<name>_sp<V>`` and ``<name>_<V>_bpe`` for locally built datasets (the demo's name is "demo").
Default root: ``$GOLF_DATA_DIR``, else ``~/.cache/golf/data`` for the demo and ``./data`` for FineWeb.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from golf_core.errors import DataError

ENV_DATA_DIR = "GOLF_DATA_DIR"
DEFAULT_DEMO_ROOT = "~/.cache/golf/data"
DEFAULT_FINEWEB_ROOT = "./data"
DEFAULT_TRAIN_SHARDS = 80
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class DataPaths:
    """A resolved dataset: its shard folder, tokenizer model, sorted shard lists, name and vocab size."""

    dataset_dir: Path
    tokenizer_path: Path
    train_files: list = field(default_factory=list)
    val_files: list = field(default_factory=list)
    name: str = "demo"
    vocab_size: int = 1024

    def load_tokenizer(self):
        """The SentencePiece processor (TokenizerError if missing or its vocab differs)."""
        from golf_core.data.tokenizer import load_tokenizer

        return load_tokenizer(self.tokenizer_path, self.vocab_size)

    def byte_luts(self):
        """The challenge's byte tables (``ByteLuts``) for this dataset's tokenizer and vocab size."""
        from golf_core.data.tokenizer import build_byte_luts

        return build_byte_luts(self.load_tokenizer(), self.vocab_size)

    def manifest(self) -> Optional[dict]:
        """The dataset's ``manifest.json`` (written by ``golf data build``), or None."""
        path = self.dataset_dir / MANIFEST_NAME
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))


def default_root(source: str) -> Path:
    """``$GOLF_DATA_DIR`` if set, else ``~/.cache/golf/data`` (demo) or ``./data`` (fineweb and others)."""
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    return Path(DEFAULT_DEMO_ROOT if source == "demo" else DEFAULT_FINEWEB_ROOT).expanduser()


def dataset_name(name: str, vocab_size: int) -> str:
    """Folder name of a dataset: ``fineweb10B_sp<V>`` for "fineweb", else ``<name>_sp<V>``."""
    return f"fineweb10B_sp{vocab_size}" if name == "fineweb" else f"{name}_sp{vocab_size}"


def tokenizer_stem(name: str, vocab_size: int) -> str:
    """File stem of a tokenizer: ``fineweb_<V>_bpe`` for "fineweb", else ``<name>_<V>_bpe``."""
    return f"{name}_{vocab_size}_bpe"


def layout(root, name: str, vocab_size: int) -> tuple[Path, Path]:
    """``(dataset_dir, tokenizer_path)`` of dataset ``name`` at ``vocab_size`` under ``root``."""
    root = Path(root).expanduser()
    return (root / "datasets" / dataset_name(name, vocab_size),
            root / "tokenizers" / f"{tokenizer_stem(name, vocab_size)}.model")


def list_shards(dataset_dir, split: str) -> list[Path]:
    """The ``fineweb_<split>_*.bin`` files of ``dataset_dir``, sorted lexicographically."""
    return sorted(Path(dataset_dir).glob(f"fineweb_{split}_*.bin"))


def download_command(vocab_size: int, train_shards: int, root: Optional[Path] = None) -> str:
    """The exact ``golf data download`` command that fetches FineWeb sp<V> into ``root``."""
    cmd = f"golf data download --variant sp{vocab_size} --train-shards {train_shards}"
    if root is not None and Path(root).expanduser().resolve() != default_root("fineweb").resolve():
        cmd += f" --out {root}"
    return cmd


def tokenizer_for_dataset_dir(dataset_dir, vocab_size: Optional[int] = None) -> Path:
    """The tokenizer of a dataset folder: the one its ``manifest.json`` names, else the layout's
    ``<root>/tokenizers/<name>_<V>_bpe.model`` (``V`` parsed from ``..._sp<V>`` when not given)."""
    dataset_dir = Path(dataset_dir)
    if vocab_size is None:
        tail = dataset_dir.name.rsplit("_sp", 1)[-1]
        vocab_size = int(tail) if "_sp" in dataset_dir.name and tail.isdigit() else 0
    manifest = dataset_dir / MANIFEST_NAME
    if manifest.is_file():
        try:
            rel = json.loads(manifest.read_text(encoding="utf-8")).get("tokenizer")
        except (OSError, ValueError):
            rel = None
        if rel:
            return (dataset_dir / rel).resolve()
    name = dataset_dir.name
    if name.startswith("fineweb10B_sp"):
        stem = f"fineweb_{vocab_size}_bpe"
    elif "_sp" in name:
        stem = f"{name.rsplit('_sp', 1)[0]}_{vocab_size}_bpe"
    else:
        stem = f"{name}_{vocab_size}_bpe"
    return dataset_dir.parent.parent / "tokenizers" / f"{stem}.model"


def _explicit(section, log: Optional[Callable[[str], None]]) -> DataPaths:
    dataset_dir = Path(section.dataset_dir).expanduser()
    if not dataset_dir.is_dir():
        raise DataError(f"[data] dataset_dir {dataset_dir} does not exist")
    tok = (Path(section.tokenizer_path).expanduser() if section.tokenizer_path
           else tokenizer_for_dataset_dir(dataset_dir, section.vocab_size))
    if not tok.is_file():
        raise DataError(f"{tok}: tokenizer not found for dataset {dataset_dir}; set [data] tokenizer_path")
    train, val = list_shards(dataset_dir, "train"), list_shards(dataset_dir, "val")
    if not val:
        raise DataError(f"{dataset_dir}: no fineweb_val_*.bin shards")
    if not train:
        raise DataError(f"{dataset_dir}: no fineweb_train_*.bin shards")
    if section.train_shards is not None:
        if len(train) < section.train_shards:
            raise DataError(f"{dataset_dir}: [data] train_shards = {section.train_shards} "
                            f"but only {len(train)} training shards are present")
        train = train[: section.train_shards]
    return DataPaths(dataset_dir, tok, train, val, dataset_dir.name, section.vocab_size)


def _fineweb(section) -> DataPaths:
    root = Path(section.root).expanduser() if section.root else default_root("fineweb")
    vocab = section.vocab_size
    dataset_dir, tok = layout(root, "fineweb", vocab)
    if section.tokenizer_path:
        tok = Path(section.tokenizer_path).expanduser()
    want = section.train_shards or DEFAULT_TRAIN_SHARDS
    train, val = list_shards(dataset_dir, "train"), list_shards(dataset_dir, "val")
    missing = None
    if not val:
        missing = f"no validation shards in {dataset_dir}"
    elif not tok.is_file():
        missing = f"tokenizer {tok} is missing"
    elif not train:
        missing = f"no training shards in {dataset_dir}"
    elif section.train_shards is not None and len(train) < section.train_shards:
        missing = f"{len(train)} of {section.train_shards} training shards in {dataset_dir}"
    if missing:
        raise DataError(f"FineWeb sp{vocab} data not found ({missing}); fetch it with: "
                        f"{download_command(vocab, want, root)}")
    if section.train_shards is not None:
        train = train[: section.train_shards]
    return DataPaths(dataset_dir, tok, train, val, "fineweb", vocab)


def resolve_data(data_section, build_missing: bool = True,
                 log: Optional[Callable[[str], None]] = None) -> DataPaths:
    """Resolve a recipe's ``[data]`` table to a ``DataPaths``.

    An explicit ``dataset_dir`` is used as is. ``source = "demo"`` builds the demo dataset under the
    root when it is missing or stale (``build_missing``; else DataError naming the build command).
    ``source = "fineweb"`` with missing files raises DataError saying exactly which
    ``golf data download`` command fetches them.
    """
    if data_section.dataset_dir:
        return _explicit(data_section, log)
    if data_section.source == "fineweb":
        return _fineweb(data_section)
    from golf_core.data.build import build_dataset, cached_dataset

    root = Path(data_section.root).expanduser() if data_section.root else default_root("demo")
    paths = cached_dataset(root, data_section.vocab_size, "demo")
    if paths is None:
        if not build_missing:
            raise DataError(f"demo dataset sp{data_section.vocab_size} is not built in {root}; "
                            f"build it with: golf data build --vocab {data_section.vocab_size} --out {root}")
        paths = build_dataset(root, data_section.vocab_size, "demo", log=log)
    if data_section.tokenizer_path:
        paths = DataPaths(paths.dataset_dir, Path(data_section.tokenizer_path).expanduser(),
                          paths.train_files, paths.val_files, paths.name, paths.vocab_size)
    if data_section.train_shards is not None:
        if len(paths.train_files) < data_section.train_shards:
            raise DataError(f"{paths.dataset_dir}: [data] train_shards = {data_section.train_shards} "
                            f"but the demo has only {len(paths.train_files)} training shards")
        paths = DataPaths(paths.dataset_dir, paths.tokenizer_path, paths.train_files[: data_section.train_shards],
                          paths.val_files, paths.name, paths.vocab_size)
    return paths
