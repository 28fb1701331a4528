"""Where a run's shards and tokenizer live (the challenge's layout), and ``resolve_data``.

Layout under a data root (pg_core.md §2.1)::

    <root>/datasets/<dataset>/fineweb_train_NNNNNN.bin, fineweb_val_NNNNNN.bin
    <root>/datasets/<dataset>/fineweb_val_bytes_NNNNNN.bin   (CaseOps: original bytes per token)
    <root>/tokenizers/<tokenizer>.model

with ``<dataset>`` = ``fineweb10B_sp<V>`` and ``<tokenizer>`` = ``fineweb_<V>_bpe`` for FineWeb,
``<name>_sp<V>`` and ``<name>_<V>_bpe`` for locally built datasets (the demo's name is "demo").
A CaseOps variant (``[data] variant = "caseops"``) is ``<name>_caseops`` locally and, as
published by PR #1729, ``fineweb10B_sp<V>_lossless_caps_caseops_v1_reserved`` with tokenizer
``fineweb_<V>_bpe_lossless_caps_caseops_v1_reserved``. Default root: ``$GOLF_DATA_DIR``, else ``~/.cache/golf/data`` for the demo and ``./data`` for FineWeb.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from golf_core.errors import DataError

ENV_DATA_DIR = "GOLF_DATA_DIR"
DEFAULT_DEMO_ROOT = "~/.cache/golf/data"
DEFAULT_FINEWEB_ROOT = "./data"
DEFAULT_TRAIN_SHARDS = 80
MANIFEST_NAME = "manifest.json"
#: The published CaseOps dataset's suffix (PR #1729's tokenizer spec ``dataset_suffix``).
CASEOPS_SUFFIX = "lossless_caps_caseops_v1_reserved"


@dataclass(frozen=True)
class DataPaths:
    """A resolved dataset: its shard folder, tokenizer model, sorted shard lists, name and vocab size,
    and the byte sidecars of the validation shards (CaseOps; empty otherwise), one per val shard."""

    dataset_dir: Path
    tokenizer_path: Path
    train_files: list = field(default_factory=list)
    val_files: list = field(default_factory=list)
    name: str = "demo"
    vocab_size: int = 1024
    val_byte_files: list = field(default_factory=list)

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
    """The ``fineweb_<split>_NNNNNN.bin`` files of ``dataset_dir`` (``split`` "train", "val" or
    "val_bytes", the CaseOps byte sidecars), sorted lexicographically."""
    pattern = re.compile(rf"fineweb_{re.escape(split)}_\d+\.bin")
    return sorted(p for p in Path(dataset_dir).glob(f"fineweb_{split}_*.bin") if pattern.fullmatch(p.name))


def with_byte_sidecars(paths: DataPaths) -> DataPaths:
    """``paths`` with the byte sidecars found in its folder; DataError when some but not all
    validation shards have one."""
    sidecars = list_shards(paths.dataset_dir, "val_bytes")
    if sidecars and [p.name.replace("val_bytes_", "val_") for p in sidecars] != [p.name for p in paths.val_files]:
        raise DataError(f"{paths.dataset_dir}: {len(sidecars)} byte sidecars (fineweb_val_bytes_*.bin) for "
                        f"{len(paths.val_files)} validation shards; each validation shard needs its own")
    return replace(paths, val_byte_files=sidecars)


def download_command(vocab_size: int, train_shards: int, root: Optional[Path] = None, variant: str = "plain") -> str:
    """The exact ``golf data download`` command that fetches FineWeb sp<V> (plain or CaseOps) into ``root``."""
    name = f"sp{vocab_size}_{CASEOPS_SUFFIX}" if variant == "caseops" else f"sp{vocab_size}"
    cmd = f"golf data download --variant {name} --train-shards {train_shards}"
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
    return with_byte_sidecars(DataPaths(dataset_dir, tok, train, val, dataset_dir.name, section.vocab_size))


def fineweb_layout(root, vocab_size: int, variant: str = "plain") -> tuple[Path, Path]:
    """``(dataset_dir, tokenizer_path)`` of FineWeb sp<V> under ``root``, plain or CaseOps (PR #1729's names)."""
    dataset_dir, tok = layout(root, "fineweb", vocab_size)
    if variant == "caseops":
        dataset_dir = dataset_dir.with_name(f"{dataset_dir.name}_{CASEOPS_SUFFIX}")
        tok = tok.with_name(f"fineweb_{vocab_size}_bpe_{CASEOPS_SUFFIX}.model")
    return dataset_dir, tok


def _fineweb(section) -> DataPaths:
    root = Path(section.root).expanduser() if section.root else default_root("fineweb")
    vocab = section.vocab_size
    variant = getattr(section, "variant", "plain")
    dataset_dir, tok = fineweb_layout(root, vocab, variant)
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
    elif variant == "caseops" and len(list_shards(dataset_dir, "val_bytes")) != len(val):
        missing = f"byte sidecars fineweb_val_bytes_*.bin missing in {dataset_dir}"
    if missing:
        what = f"FineWeb sp{vocab}" + (" CaseOps" if variant == "caseops" else "")
        raise DataError(f"{what} data not found ({missing}); fetch it with: "
                        f"{download_command(vocab, want, root, variant)}")
    if section.train_shards is not None:
        train = train[: section.train_shards]
    return with_byte_sidecars(DataPaths(dataset_dir, tok, train, val, "fineweb", vocab))


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
    variant = getattr(data_section, "variant", "plain")
    paths = cached_dataset(root, data_section.vocab_size, "demo", variant=variant)
    if paths is None:
        if not build_missing:
            flag = " --variant caseops" if variant == "caseops" else ""
            raise DataError(f"demo dataset sp{data_section.vocab_size}{' CaseOps' if flag else ''} is not built "
                            f"in {root}; build it with: golf data build --vocab {data_section.vocab_size}{flag} --out {root}")
        paths = build_dataset(root, data_section.vocab_size, "demo", variant=variant, log=log)
    if data_section.tokenizer_path:
        paths = replace(paths, tokenizer_path=Path(data_section.tokenizer_path).expanduser())
    if data_section.train_shards is not None:
        if len(paths.train_files) < data_section.train_shards:
            raise DataError(f"{paths.dataset_dir}: [data] train_shards = {data_section.train_shards} "
                            f"but the demo has only {len(paths.train_files)} training shards")
        paths = replace(paths, train_files=paths.train_files[: data_section.train_shards])
    return paths
